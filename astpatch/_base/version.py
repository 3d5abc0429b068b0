"""astpatch's version: part of every cache key, so a new astpatch never runs old cached code."""

__version__ = "0.1.0"
