"""The model layer: rules and edits, declared as data, version gates; and which rules exist (rule
files, other distributions' entry points) and which win (the rule set, shared by `install()`, the
command line and the pytest plugin).

Declaring a rule imports neither libcst nor packaging. Internal: the public names are exported
by `astpatch/__init__.py`.
"""
