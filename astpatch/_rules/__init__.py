"""The rules layer: which rules exist (rule files, other distributions' entry points), which win,
which are disabled. One `RuleSet` serves `install()`, the command line and the pytest plugin.
Internal.
"""
