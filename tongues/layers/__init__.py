"""Shared math: one module per primitive. Family files wire these under their checkpoint names."""
