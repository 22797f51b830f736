"""gemlib's exceptions.

Every error gemlib raises on purpose derives from :class:`GemlibError`, so callers
can catch the library's failures with one ``except`` clause::

    GemlibError
    ├── ToolSchemaError        a tool definition cannot be normalised or is not valid JSON Schema
    ├── FormatError            a trajectory or record in some format cannot be read
    │   └── ParseError         a model reply without the required structure (says where)
    ├── PipelineError          a pipeline is mis-assembled (stages that do not fit together)
    ├── ModelConfigError       an LLM's settings cannot work (malformed api_base, credentials in it)
    ├── RunDirError            a run directory is unusable (other config, locked, corrupt)
    │   └── RunDirWriteError   writing to it failed (disk full, I/O error); the run stops
    ├── CorpusReadError        a corpus file cannot be read (permissions, I/O error)
    ├── RunAborted             a run stopped early (too many failures, or a fatal error)
    ├── FatalError             raised by a stage: every further item would fail too
    │   │                      (bad credentials, unknown model), so the run stops at once
    │   ├── ModelAuthError     the provider refused the credentials or does not know the model
    │   ├── ModelUnreachable   the model's server was never reached (nothing listens there)
    │   └── CacheError         the request cache cannot be opened (unwritable, corrupt)
    ├── ModelError             a model call failed: never the item's fault (left for retry)
    │   ├── TransientModelError    worth retrying: timeouts, connection errors, 5xx
    │   │   ├── RateLimited        HTTP 429; ``retry_after`` holds the server's advice
    │   │   └── ConnectFailed      no connection to the server could be opened
    │   ├── ModelRequestError      the request itself was refused (4xx other than 429)
    │   │   └── PromptTooLong      the prompt does not fit the model's context: the
    │   │                          item's fault, so a rejection
    │   └── ReplyTooLarge          the reply passed ``LLM.max_reply_bytes``
    └── ReplyError             a reply that could not be used (cut off, or unparseable
                               after the repair attempts); ``raw`` keeps the reply

Errors about a user's input subclass :class:`ValueError` as well, so code written
against plain Python conventions keeps working.
"""

from __future__ import annotations


class GemlibError(Exception):
    """Base class of every error gemlib raises on purpose."""


class ToolSchemaError(GemlibError, ValueError):
    """A tool definition that cannot be normalised into a valid JSON-Schema tool.

    ``tool`` names the offending tool (or ``"<unnamed>"``) and ``problem`` says what
    is wrong, so a rejection built from this error points at the exact definition.
    """

    def __init__(self, tool: str, problem: str) -> None:
        self.tool = tool
        self.problem = problem
        super().__init__(f"tool {tool!r}: {problem}")


class ToolSchemaWarning(UserWarning):
    """A defect in a tool definition that gemlib repaired (an empty ``"type"`` read as string)."""


class FormatError(GemlibError, ValueError):
    """A record in some serialised format (OpenAI chat, tag format...) cannot be read."""


class ParseError(FormatError):
    """A model reply that does not have the required structure.

    The message says which tag or field and where (line and column), precise
    enough to send back to the model for a repair.
    """


class PipelineError(GemlibError, TypeError):
    """A pipeline whose stages do not fit together, found when it is composed."""


class ModelConfigError(GemlibError, ValueError):
    """An :class:`~gemlib.llm.LLM` whose settings cannot work, found when it is built
    (a malformed ``api_base``, credentials inside ``api_base``)."""


class RunDirError(GemlibError):
    """A run directory that cannot be used for this run (other pipeline, locked, corrupt)."""


class RunDirWriteError(RunDirError):
    """Writing results to a run directory failed (disk full, quota, I/O error).

    Whatever the failed write left was cut back, nothing half-written counts as
    committed, and the run stops: rerunning the same command once the cause is
    fixed resumes it with nothing lost or duplicated.
    """


class CorpusReadError(GemlibError, OSError):
    """A corpus file that cannot be read at all (no permission, an I/O error).

    Unlike a bad line, which costs only itself, nothing after it can be read,
    so the run stops; rerunning once the file is readable resumes it.
    """


class RunAborted(GemlibError):
    """A run stopped early because the share of failing items passed its bound.

    Everything finished before the stop is kept in the run directory; rerunning the
    same command resumes from there.
    """


class FatalError(GemlibError):
    """Raised inside a stage when no further item can succeed (bad credentials, unknown model).

    The runner stops the run at once: the item that raised it and the items in
    flight are not recorded, so rerunning after fixing the cause processes them.
    """


class ModelError(GemlibError):
    """A model call failed. ``model`` names the model (never its credentials)."""

    def __init__(self, message: str, *, model: str = "", status: int | None = None) -> None:
        self.model = model
        self.status = status
        super().__init__(f"{model}: {message}" if model else message)


class TransientModelError(ModelError):
    """A failure worth retrying: timeout, connection error, server error (5xx)."""


class RateLimited(TransientModelError):
    """HTTP 429. ``retry_after`` is the server's ``Retry-After`` in seconds, if it sent one."""

    def __init__(self, message: str, *, model: str = "", retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message, model=model, status=429)


class ModelRequestError(ModelError):
    """The provider refused the request itself (4xx other than 429): not retried."""


class PromptTooLong(ModelRequestError):
    """The prompt does not fit the model's context window.

    Unlike other model errors this is the item's own fault (its text is too
    long for this model), so :class:`~gemlib.stages.llm_stage.LLMStage` turns it
    into a ``prompt_too_long`` rejection.
    """


class ConnectFailed(TransientModelError):
    """No connection to the model's server could be opened (refused, no such host)."""


class ReplyTooLarge(ModelError):
    """A reply longer than ``LLM.max_reply_bytes``; it is refused without being read whole.

    A model does not write tens of megabytes in one reply; a server that sends
    them is broken, so the item is left for the next run rather than rejected.
    """


class ModelAuthError(FatalError, ModelError):
    """Bad or missing credentials, or a model name the provider does not know.

    Every further request would fail the same way, so a run stops at once.
    """


class ModelUnreachable(FatalError, ModelError):
    """The model's server could not be reached at all since the run began.

    Every item would fail the same way, so the run stops within seconds; the
    message says which address was tried.
    """


class CacheError(FatalError):
    """The request cache cannot be used (its folder is unwritable, its file is not a database).

    Raised when the cache is first opened, so the run stops before spending
    anything; the message names the file and how to run without it.
    """


class ReplyError(GemlibError):
    """A model reply that cannot be used.

    ``rule`` is the rejection rule it becomes (``truncated_reply``,
    ``unparseable_reply``), ``raw`` the last reply text, kept for inspection.
    """

    def __init__(self, rule: str, reason: str, raw: str) -> None:
        self.rule = rule
        self.reason = reason
        self.raw = raw
        super().__init__(reason)
