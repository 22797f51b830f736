"""The installed gemlib version (read by the build backend and by run manifests)."""

__version__ = "0.1.0"
