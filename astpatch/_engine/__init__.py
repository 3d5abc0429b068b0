"""The engine layer: locate target functions, apply edits, compile, cache; and the one pipeline
(`astpatch._engine.pipeline.build`) that the import hook, `astpatch cache warm` and the
benchmark all go through. Internal.
"""
