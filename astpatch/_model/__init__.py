"""The model layer: rules and edits, declared as data, and version gates.

Declaring a rule imports neither libcst nor packaging. Internal: the public names are exported
by `astpatch/__init__.py`.
"""
