"""The rules that ship with astpatch: they load, and each names its upstream fix."""

from __future__ import annotations

import os

import astpatch
from astpatch._model.rulefiles import builtin_rules_dir
from astpatch._model.ruleset import load_rules


def test_shipped_rules_load_cleanly_and_are_complete():
    problems: list[str] = []
    rules = load_rules([builtin_rules_dir()], problems.append)
    assert problems == []
    ids = [r.id for r in rules]
    assert "torch-fxgraph-cache-key-valueerror" in ids
    for rule in rules:
        assert isinstance(rule, astpatch.Rule)
        assert rule.upstream and rule.summary
        assert os.path.dirname(rule.origin) == builtin_rules_dir()


def test_installed_astpatch_ships_its_rules_inside_the_package():
    # In an installed astpatch the rules live in astpatch/rules; in a checkout, in rules/.
    package = os.path.dirname(astpatch.__file__)
    if "site-packages" in package:
        assert builtin_rules_dir() == os.path.join(package, "rules")
    else:
        assert builtin_rules_dir() == os.path.join(os.path.dirname(package), "rules")
    assert os.path.isfile(os.path.join(builtin_rules_dir(), "torch_fxgraph_pickle_valueerror.py"))


def test_the_readme_catalogue_is_current():
    """README.md's rule catalogue is what tools/catalogue.py makes from the shipped rules."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    result = subprocess.run([sys.executable, str(root / "tools" / "catalogue.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
