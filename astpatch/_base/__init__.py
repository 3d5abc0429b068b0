"""The base layer: settings, messages, outcomes, files, distribution metadata, lines; and the version.

Nothing here imports another layer of astpatch. Internal: the public API is what
`astpatch/__init__.py` exports.
"""

# astpatch's version: part of every cache key, so a new astpatch never runs old cached code.
__version__ = "0.1.0"
