"""Named pipelines: ``Pipeline.preset("gem", model)`` and the registry behind it.

The runtime knows no preset itself. gemlib's method registers ``gem`` and
``synthesizer`` (from :mod:`gemlib.gem.presets`, wired in the ``gemlib``
package's facade); other packages add theirs through the ``gemlib.presets``
entry-point group, as a callable ``(model, **options) -> Pipeline``::

    [project.entry-points."gemlib.presets"]
    mine = "my_package.presets:my_pipeline"
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from gemlib._registry import Registry
from gemlib.errors import PipelineError

if TYPE_CHECKING:
    from gemlib.pipeline.pipeline import Pipeline

__all__ = ["PRESETS"]

PRESETS: Registry[Callable[..., Pipeline]] = Registry("preset", "gemlib.presets", PipelineError)
"""Every named pipeline: ``PRESETS.get("gem")(model, **options)``."""
