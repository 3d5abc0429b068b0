"""The base layer: version, settings, messages, outcomes, files, distribution metadata, lines.

Nothing here imports another layer of astpatch. Internal: the public API is what
`astpatch/__init__.py` exports.
"""
