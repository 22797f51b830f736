"""Prompt templates (Jinja2, shipped as package data) and their sandboxed renderer.

Each GEM stage has a template here (``relevance.j2``, ``extraction.j2``,
``generation.j2``, ``refinement.j2``, ``judge.j2``). A stage can be given
another template as a path or as a string. Templates render in Jinja2's
sandbox with strict undefined variables; corpus text and model output are
always passed as *variables*, so text containing ``{{ ... }}`` or
``{% ... %}`` is inserted as it is and never evaluated.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import attrs
from jinja2 import StrictUndefined, Template, TemplateError, pass_eval_context
from jinja2.exceptions import SecurityError
from jinja2.filters import sync_do_join
from jinja2.nodes import EvalContext
from jinja2.sandbox import SandboxedEnvironment

from gemlib.errors import FatalError, GemlibError

__all__ = ["Prompt", "load_prompt"]

_SETTINGS: dict[str, Any] = {
    "undefined": StrictUndefined,
    "autoescape": False,
    "keep_trailing_newline": True,
    "trim_blocks": True,
    "lstrip_blocks": True,
}
"""How prompts are rendered (the tests compare gemlib's filters with jinja's under them)."""
_ENV = SandboxedEnvironment(**_SETTINGS)


@pass_eval_context
def _join(
    eval_ctx: EvalContext, value: Any, d: str = "", attribute: str | int | None = None
) -> str:
    """Jinja's ``join`` filter, its plain case (no attribute, no autoescaping) done here:
    the same string, without the two calls of the wrapper that checks on every join
    whether the environment is async (the relevance prompt joins three label lists)."""
    if attribute is None and not eval_ctx.autoescape:
        return str(d).join(map(str, value))
    return sync_do_join(eval_ctx, value, d, attribute)


_ENV.filters["join"] = _join


@attrs.frozen
class Prompt:
    """A template's source and where it came from; renders in the sandbox."""

    source: str
    origin: str
    hash: str = attrs.field(init=False, eq=False, repr=False)
    """sha256 of the template source (recorded in provenance and manifests); worked out
    once, when the prompt is loaded: provenance reads it per request."""

    @hash.default
    def _source_hash(self) -> str:
        return hashlib.sha256(self.source.encode()).hexdigest()[:16]

    def render(self, **variables: Any) -> str:
        """Render with ``variables``; errors name the template."""
        template = _compiled(self.source)
        # The context's variables as Template.new_context makes them (the globals, then
        # ``variables``), in one dict: ``variables`` is this call's own, not copied again.
        context = dict(template.globals)
        context.update(variables)
        try:
            try:  # Template.render without its layers: a third of a short prompt's cost
                return "".join(template.root_render_func(template.new_context(context, True)))
            except Exception:
                _ENV.handle_exception()  # re-raises, its traceback in the template's lines
        except SecurityError as exc:  # the template's fault, so every item's: stop the run
            raise FatalError(f"prompt template {self.origin}: {exc}") from None
        except TemplateError as exc:
            raise GemlibError(f"prompt template {self.origin}: {exc}") from None


@lru_cache(maxsize=64)
def _compiled(source: str) -> Template:
    template = _ENV.from_string(source)
    # jinja2 keeps a template's globals as a ChainMap over the environment's and copies
    # it into every render's context, iterating it in Python: a plain dict is copied in C.
    template.globals = dict(template.globals)
    return template


@lru_cache(maxsize=64)
def load_prompt(name: str, override: str | Path | None = None) -> Prompt:
    """The packaged template ``name``, or ``override`` (a file path or template text)."""
    if override is None:
        source = (resources.files(__package__) / f"{name}.j2").read_text(encoding="utf-8")
        return Prompt(source, f"gemlib:{name}.j2")
    if isinstance(override, Path):
        return Prompt(override.read_text(encoding="utf-8"), str(override))
    return Prompt(override, f"<{name} template string>")
