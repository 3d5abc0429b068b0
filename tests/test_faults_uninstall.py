"""uninstall() and ASTPATCH_DISABLE really restore plain imports, in fresh processes."""

from __future__ import annotations

from scenario import UPSTREAM, Scenario

NO_FINDER = "assert not [f for f in sys.meta_path if type(f).__name__ == 'PatchingFinder']"


def test_uninstall_restores_plain_imports(tmp_path):
    """install() then astpatch.uninstall() before the target is imported."""
    s = Scenario(tmp_path)
    run = s.run(after=f"astpatch.uninstall(); {NO_FINDER}")
    assert run["patched"] is False and run["output"] == UPSTREAM and run["outcomes"] == []


def test_the_handle_uninstalls(tmp_path):
    """The handle's uninstall() (what leaving a with block calls)."""
    s = Scenario(tmp_path)
    run = s.run(after=f"handle.__exit__(None, None, None); {NO_FINDER}")
    assert run["patched"] is False and run["output"] == UPSTREAM and run["outcomes"] == []


def test_disable_everything(tmp_path):
    """ASTPATCH_DISABLE=1."""
    s = Scenario(tmp_path)
    run = s.run(ASTPATCH_DISABLE="1")
    assert run["patched"] is False and run["output"] == UPSTREAM and run["outcomes"] == [] and run.warnings == []
    assert not s.cache.exists()


def test_disable_the_rule(tmp_path):
    """ASTPATCH_DISABLE=<rule id>."""
    s = Scenario(tmp_path)
    run = s.run(ASTPATCH_DISABLE="pickler-valueerror")
    assert run["patched"] is False and run["output"] == UPSTREAM and run["outcomes"] == [] and run.warnings == []
