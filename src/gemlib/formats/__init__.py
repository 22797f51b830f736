"""Formats at the edge: reading and writing trajectories and teacher replies."""
