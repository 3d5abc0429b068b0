"""The import hook layer: the finder, the loader, live patching, and the installation that owns
them. It talks to the rest through the rule set (`astpatch._model.ruleset`) and the pipeline
(`astpatch._engine.pipeline`). Internal: `astpatch.install()` is the way in.
"""
