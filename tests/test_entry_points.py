"""Rules from other distributions, through the `astpatch.rules` entry point group.

The example distribution in tests/example_dist is built and installed into a fresh virtual
environment, which sees astpatch and its dependencies through a .pth file.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from conftest import PICKLER_SOURCE, clean_env

EXAMPLE = Path(__file__).resolve().parent / "example_dist"

PROBE = r'''
import json, sys, warnings
warnings.simplefilter("always")
import astpatch
astpatch.install()
stage = {"after_install": sorted(m for m in ("importlib.metadata", "astpatch_example_rules") if m in sys.modules)}
import fractions  # the first import after install() of a module not yet loaded
stage["after_first_import"] = sorted(m for m in ("importlib.metadata", "astpatch_example_rules") if m in sys.modules)
import pickler
print(json.dumps({**stage, "patched": "ValueError" in pickler.Pickler.dumps.__code__.co_names,
                  "outcomes": [[o.rule_id, o.status] for o in astpatch.applied()]}))
'''


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    root = tmp_path_factory.mktemp("plugin-venv")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    # astpatch, libcst and packaging come from the test environment.
    (Path(purelib) / "_test_environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    build = root / "build"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--no-index", str(EXAMPLE)], check=True, cwd=root,
                   env={**clean_env(), "TMPDIR": str(build.parent)})
    site = root / "site"
    site.mkdir()
    (site / "pickler.py").write_text(PICKLER_SOURCE)
    return python, site, root


def run(venv, code: str, **env: str) -> subprocess.CompletedProcess:
    python, site, root = venv
    environment = clean_env(PYTHONPATH=str(site), **env)
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True, env=environment, cwd=root, timeout=120)


def test_the_example_distribution_is_installed_with_its_entry_point(venv):
    result = run(venv, "from importlib.metadata import entry_points; "
                       "print([(e.name, e.value, e.dist.name) for e in entry_points(group='astpatch.rules')])")
    assert result.stdout.strip() == "[('example', 'astpatch_example_rules', 'astpatch-example-rules')]"


def test_its_rule_applies_and_is_indexed_for_later_processes(venv, tmp_path):
    cache = str(tmp_path / "cache")
    first = run(venv, PROBE, ASTPATCH_CACHE_DIR=cache)
    assert first.returncode == 0, first.stderr
    data = json.loads(first.stdout)
    # No index yet: install() reads nothing; discovery runs at the first import after it.
    assert data["after_install"] == []
    assert data["after_first_import"] == ["astpatch_example_rules", "importlib.metadata"]
    assert data["patched"] is True and data["outcomes"] == [["example-pickler-valueerror", "applied"]]
    assert len(list((tmp_path / "cache").glob("entry-points-*.index"))) == 1
    second = json.loads(run(venv, PROBE, ASTPATCH_CACHE_DIR=cache).stdout)
    # With the index: no metadata is read at all, and the rule module is imported with its target.
    assert second["after_install"] == [] and second["after_first_import"] == []
    assert second["patched"] is True


def test_the_command_line_lists_it(venv, tmp_path):
    result = run(venv, "from astpatch.cli import main; raise SystemExit(main(['list', '--json']))",
                 ASTPATCH_CACHE_DIR=str(tmp_path / "cache"))
    rows = {r["id"]: r for r in json.loads(result.stdout)}
    assert rows["example-pickler-valueerror"]["outcome"] == "applied"
    assert rows["example-pickler-valueerror"]["origin"] == "entry point 'example' of astpatch-example-rules"


def test_a_broken_third_party_rule_names_its_distribution(venv, tmp_path):
    python, site, root = venv
    module = Path(subprocess.run([str(python), "-c", "import astpatch_example_rules as m; print(m.__file__)"],
                                 capture_output=True, text=True, env=clean_env()).stdout.strip())
    original = module.read_text()
    try:
        module.write_text(original + "\nRULES.append('not a rule')\n")
        (site / "other.py").write_text("")
        result = run(venv, PROBE, ASTPATCH_CACHE_DIR=str(tmp_path / "cache"))
        data = json.loads(result.stdout)
        assert data["patched"] is False and data["outcomes"] == []
        assert ("AstpatchWarning: astpatch: the rules of astpatch-example-rules (entry point 'example' = "
                "'astpatch_example_rules') cannot be loaded: TypeError: astpatch_example_rules does not give astpatch "
                "rules") in result.stderr
        # The shipped rules are unaffected (their module is simply not imported here).
        listed = run(venv, "from astpatch.cli import main; raise SystemExit(main(['list', '--json']))",
                     ASTPATCH_CACHE_DIR=str(tmp_path / "cache2"))
        assert "torch-fxgraph-cache-key-valueerror" in {r["id"] for r in json.loads(listed.stdout)}
    finally:
        module.write_text(original)
