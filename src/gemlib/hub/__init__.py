"""A run as a Hugging Face dataset: a folder ready for the Hub, and the upload.

    gemlib export runs/one --format hf --out data/one     # the folder
    gemlib push runs/one user/my-dataset                   # the folder, uploaded

The folder holds one config per export format, each a ``train`` split::

    README.md                      the dataset card (gemlib.hub.card)
    data/openai/train.jsonl        OpenAI messages + tools (the default config)
    data/sharegpt/train.jsonl      ShareGPT with function calls
    data/hermes/train.jsonl        ChatML with <tool_call>
    data/gem/train.jsonl           the GEM tag format

``datasets.load_dataset(folder, config)`` loads each of them, offline. Every
config is JSONL because ``datasets`` reads all the configs of a repository with
one loader, chosen from the most common file type: a Parquet config beside
JSONL ones fails to load. (``gemlib export --format parquet`` writes the typed
Parquet layout of :mod:`gemlib.formats.hf` on its own.) The
upload uses ``huggingface_hub`` (the ``hf`` extra) with the token in
``HF_TOKEN`` (or ``HUGGING_FACE_HUB_TOKEN``, or a ``hf auth login``), which is
only ever sent in the request header: it is not written to the folder, the
card, a log or an error message.
"""

from gemlib.hub.push import DATASET_FOLDER, export_hf, push_to_hub

__all__ = ["DATASET_FOLDER", "export_hf", "push_to_hub"]
