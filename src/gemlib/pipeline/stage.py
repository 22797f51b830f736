"""The stage contract: take one item, return one item, several items, or a rejection.

A stage is a class with one method to write::

    class Shout(Stage):
        def process(self, doc: Document) -> Document:
            return doc.model_copy(update={"text": doc.text.upper()})

``process`` may be ``async def`` as well; the runner bridges both. Its type
annotations declare what the stage takes and gives, and :class:`~gemlib.Pipeline`
checks them when stages are composed. Class attributes tune a stage: ``name``
(defaults to the class name in snake case), ``version`` (bump it when behaviour
changes: it feeds run manifests and caches), ``concurrency`` (most items in
``process`` at once; ``None`` means the pipeline's window only) and ``blocking``
(run a synchronous ``process`` in a worker thread instead of the event loop; a
stage whose work is long only for some items decides per item in
:meth:`Stage.blocks`).
"""

from __future__ import annotations

import abc
import enum
import inspect
import re
import types
import typing
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Union

import attrs

from gemlib.errors import PipelineError
from gemlib.llm.usage import ModelUsage
from gemlib.model import Rejection

if TYPE_CHECKING:
    from gemlib.llm.client import LLM

__all__ = [
    "FunctionStage",
    "Stage",
    "StageOutput",
    "accepts",
    "output_types_of",
    "signature_types",
    "stage",
]

StageOutput = Union[Any, Sequence[Any], Rejection]  # noqa: UP007  # a runtime alias
"""What ``process`` returns: an item, a sequence of items and rejections, or a rejection."""

_CONTAINERS = {list, tuple, Sequence, Iterable, typing.List, typing.Tuple}  # noqa: UP006
_AWAITABLES = {Awaitable, typing.Coroutine, typing.Awaitable}


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


class Stage(abc.ABC):
    """Base class of every pipeline stage. Subclasses implement :meth:`process`."""

    name: str = "stage"
    version: str = "1"
    concurrency: int | None = None
    blocking: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = _snake(cls.__name__)

    @abc.abstractmethod
    def process(self, item: Any) -> StageOutput | Awaitable[StageOutput]:
        """Handle one item: return an item, several (fan-out), or a :class:`Rejection`.

        Raising an exception rejects the item with rule ``exception`` (the runner
        catches it); a run stops only when such failures pass its error bound.
        """

    def blocks(self, item: Any) -> bool:
        """Whether a synchronous ``process(item)`` runs in a worker thread (default:
        ``blocking``). The hand-off costs more than a millisecond of work; override
        this to keep short items on the event loop."""
        return self.blocking

    # ------------------------------------------------------------------ introspection

    @property
    def input_type(self) -> Any:
        """The item type ``process`` takes (``Any`` when unannotated)."""
        return signature_types(self._annotated())[0]

    @property
    def output_types(self) -> tuple[Any, ...]:
        """The item types ``process`` can emit (rejections excluded)."""
        return signature_types(self._annotated())[1]

    def _annotated(self) -> Callable[..., Any]:
        return self.process

    def config(self) -> dict[str, Any]:
        """Settings that change what the stage produces; they feed the run fingerprint.

        The default reads the fields of an attrs class (secrets should be
        declared with ``repr=False`` and are left out). For any other class it
        reads the parameters of ``__init__``, each from the attribute of the
        same name (``self.x`` or ``self._x``), the convention scikit-learn's
        ``get_params`` uses; parameters named like secrets (``api_key``,
        ``token``, ``password``, ``secret``) are left out. Each setting must be
        plain data, a function or class, or an object with a ``describe()``
        method. Anything else raises :class:`~gemlib.errors.PipelineError`
        saying how to declare it, because a setting the fingerprint cannot see
        would let a changed stage silently resume an old run.
        """
        cls = type(self)
        if attrs.has(cls):
            settings = {f.name: getattr(self, f.name) for f in attrs.fields(cls) if f.repr}
        else:
            settings = _init_settings(self)
        return {name: _plain(value, f"{self.name}.{name}") for name, value in settings.items()}

    def usage(self) -> dict[str, ModelUsage]:
        """Model usage of this stage by model name (none unless the stage calls models)."""
        return {}

    def models(self) -> Sequence[LLM]:
        """The models this stage calls (none by default).

        The pipeline sizes its window of items in flight from their limits, so
        a model allowed 256 concurrent requests is not held to the default 64.
        """
        return ()

    async def aclose(self) -> None:  # noqa: B027  # a hook: most stages hold nothing
        """Release what the stage opened during a run (connections); called when a run ends."""

    def describe(self) -> dict[str, Any]:
        """Name, version and config: what a run manifest records about this stage."""
        return {"name": self.name, "version": self.version, "config": self.config()}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} v{self.version}>"


class FunctionStage(Stage):
    """A stage made from a plain function (sync or async); see :func:`stage`."""

    def __init__(
        self,
        fn: Callable[[Any], Any],
        *,
        name: str | None = None,
        version: str = "1",
        concurrency: int | None = None,
        blocking: bool = False,
    ) -> None:
        self.fn = fn
        self.name = name or _snake(getattr(fn, "__name__", "function"))
        self.version = version
        self.concurrency = concurrency
        self.blocking = blocking

    def process(self, item: Any) -> Any:
        """Call the wrapped function on ``item``."""
        return self.fn(item)

    def config(self) -> dict[str, Any]:
        """The function's import path; its code is declared by ``version``, never hashed."""
        return {"function": _qualified(self.fn), "concurrency": self.concurrency}

    def _annotated(self) -> Callable[..., Any]:
        return self.fn

    def __repr__(self) -> str:
        return f"<FunctionStage {self.name!r} v{self.version}>"


def stage(
    fn: Callable[[Any], Any] | None = None,
    *,
    name: str | None = None,
    version: str = "1",
    concurrency: int | None = None,
    blocking: bool = False,
) -> Any:
    """Turn a function into a stage; usable bare (``@stage``) or with options."""

    def wrap(f: Callable[[Any], Any]) -> FunctionStage:
        return FunctionStage(
            f, name=name, version=version, concurrency=concurrency, blocking=blocking
        )

    return wrap(fn) if fn is not None else wrap


# --------------------------------------------------------------------------- type helpers


_SECRET = re.compile(r"key|token|password|secret|credential", re.IGNORECASE)


def _init_settings(stage: Stage) -> dict[str, Any]:
    """A plain stage's settings: its ``__init__`` parameters, read back from its attributes."""
    settings: dict[str, Any] = {}
    init = type(stage).__init__
    if init is object.__init__:
        return settings
    for param in inspect.signature(init).parameters.values():
        if param.name == "self" or _SECRET.search(param.name):
            continue
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise PipelineError(
                f"stage {stage.name!r} takes *{param.name} in __init__, so its settings cannot "
                "be read for the run fingerprint; override config() to return them"
            )
        for attribute in (param.name, "_" + param.name):
            if hasattr(stage, attribute):
                settings[param.name] = getattr(stage, attribute)
                break
        else:
            raise PipelineError(
                f"stage {stage.name!r} takes {param.name!r} in __init__ but keeps no attribute "
                f"of that name, so the run fingerprint cannot include it; store it as "
                f"self.{param.name}, or override config() to return the stage's settings"
            )
    return settings


def _qualified(fn: Callable[..., Any]) -> str:
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", type(fn).__name__)
    return f"{getattr(fn, '__module__', None) or '?'}.{name}"


def _plain(value: Any, where: str) -> Any:
    """``value`` as JSON-ready data that identifies it across processes."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_plain(v, where) for v in value]
        return items if isinstance(value, (list, tuple)) else sorted(items, key=repr)
    if isinstance(value, dict):
        return {str(k): _plain(v, where) for k, v in value.items()}
    describe = getattr(value, "describe", None)
    if callable(describe):  # stages, models: what identifies them, never secrets
        return describe()
    if isinstance(value, (types.FunctionType, types.BuiltinFunctionType, type)):
        return _qualified(value)
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    text = repr(value)
    if " at 0x" in text or text.startswith("<"):
        raise PipelineError(
            f"setting {where} is a {type(value).__name__} whose repr ({text[:60]}) does not "
            "identify it from one run to the next, so the run fingerprint cannot include it. "
            "Give that class a describe() method returning plain data, or override config() "
            "on the stage to return the settings that change its output."
        )
    return text


def _union_members(tp: Any) -> tuple[Any, ...]:
    origin = typing.get_origin(tp)
    if origin is Union or origin is types.UnionType:
        return typing.get_args(tp)
    return (tp,)


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception:  # unresolvable forward references: treat as untyped
        return {}


def signature_types(fn: Callable[..., Any]) -> tuple[Any, tuple[Any, ...]]:
    """``(input type, output types)`` of a stage method from its annotations."""
    hints = _hints(fn)
    params = [p for p in inspect.signature(fn).parameters if p != "self"]
    input_type = hints.get(params[0], Any) if params else Any
    return input_type, output_types_of(hints.get("return", Any))


def output_types_of(ret: Any) -> tuple[Any, ...]:
    """The item types a return annotation allows (containers, awaitables, rejections removed)."""
    outputs: list[Any] = []
    pending = list(_union_members(ret))
    while pending:
        tp = pending.pop(0)
        origin = typing.get_origin(tp)
        if origin in _AWAITABLES:
            pending.extend(_union_members(typing.get_args(tp)[-1]))
        elif origin in _CONTAINERS:
            for arg in typing.get_args(tp) or (Any,):
                if arg is not Ellipsis:
                    pending.extend(_union_members(arg))
        elif tp is Rejection or tp is type(None):
            continue
        elif tp not in outputs:
            outputs.append(tp)
    return tuple(outputs) or (Any,)


def accepts(input_type: Any, output_type: Any) -> bool:
    """Whether a stage taking ``input_type`` can take items of ``output_type``."""
    if input_type in (Any, object) or output_type is Any:
        return True
    for accepted in _union_members(input_type):
        if accepted in (Any, object):
            return True
        target = typing.get_origin(accepted) or accepted
        given = typing.get_origin(output_type) or output_type
        if isinstance(target, type) and isinstance(given, type) and issubclass(given, target):
            return True
    return False
