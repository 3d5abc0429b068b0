"""The inspect layer: module sources read without importing them (installed, wheels, sdists,
directories, files), rules evaluated on them afresh, and upstream diffs turned into rules; for the
command line and the pytest plugin. Internal.
"""
