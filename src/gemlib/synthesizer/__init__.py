"""The Trajectory Synthesizer: one model that turns a segment into tools plus a conversation.

- :mod:`gemlib.synthesizer.dataset`: build its fine-tuning data from validated trajectories;
- :mod:`gemlib.synthesizer.train`: the TRL recipe (the ``train`` extra);
- :class:`gemlib.synthesizer.stage.Synthesize` and ``Pipeline.synthesizer``: use it;
- :mod:`gemlib.synthesizer.compare`: the full pipeline and the synthesizer side by side.
"""

from gemlib.synthesizer.dataset import INSTRUCTION, SynthData, build_examples, write_synth_data

__all__ = ["INSTRUCTION", "SynthData", "build_examples", "write_synth_data"]
