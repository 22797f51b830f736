"""Concrete stages: segmenting, filtering, and (in their own modules) the GEM method."""
