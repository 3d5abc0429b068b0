"""Rules from other distributions, through the `astpatch.rules` entry point group.

The example distribution in tests/example_dist is built and installed into a fresh virtual
environment, which sees astpatch and its dependencies through a .pth file.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import astpatch

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
    # astpatch, libcst and packaging come from the test environment; astpatch is the copy this process
    # imported, reached through a directory of the test's own (not the checkout, whose metadata
    # directories, if a build left some, are not the test's to change).
    under_test = root / "under-test"
    under_test.mkdir()
    package = Path(astpatch.__file__).resolve().parent
    (under_test / "astpatch").symlink_to(package, target_is_directory=True)
    if not (package / "rules").is_dir():  # a checkout: the shipped rules are beside the package
        (under_test / "rules").symlink_to(package.parent / "rules", target_is_directory=True)
    (Path(purelib) / "_test_environment.pth").write_text(f"{under_test}\n{sysconfig.get_paths()['purelib']}\n")
    build = root / "build"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--no-index", str(EXAMPLE)], check=True, cwd=root,
                   env={**clean_env(), "TMPDIR": str(build.parent)})
    site = root / "site"
    site.mkdir()
    (site / "pickler.py").write_text(PICKLER_SOURCE)
    return python, site, root


def run(venv, code: str, *, path: tuple[Path, ...] = (), **env: str) -> subprocess.CompletedProcess:
    """Run `code` in the venv, with the test's modules and then `path` first on sys.path, and no other
    directory: the venv finds astpatch itself."""
    python, site, root = venv
    environment = clean_env(**env)
    environment["PYTHONPATH"] = os.pathsep.join(map(str, [site, *path]))
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True, env=environment, cwd=root,
                          timeout=120)


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


def probe(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_venv_imports_the_astpatch_under_test(venv):
    """Not a copy installed in the test environment, which the venv's .pth file also reaches: the
    entry-point tests would otherwise test that copy."""
    result = run(venv, "import astpatch; print(astpatch.__file__)")
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()).resolve() == Path(astpatch.__file__).resolve()


DISCOVERED = ["astpatch_example_rules", "importlib.metadata"]  # what discovery at the first import loads


def test_an_index_other_users_can_write_is_not_used_and_is_replaced_by_a_private_one(venv, tmp_path):
    """The index names modules to import: one that another user could have written must not decide that."""
    cache = tmp_path / "cache"
    assert probe(run(venv, PROBE, ASTPATCH_CACHE_DIR=str(cache)))["after_first_import"] == DISCOVERED
    [index] = cache.glob("entry-points-*.index")
    index.chmod(0o664)

    result = run(venv, PROBE, ASTPATCH_CACHE_DIR=str(cache))
    data = probe(result)
    assert result.stderr.count("AstpatchWarning") == 1, result.stderr
    assert (f"AstpatchWarning: astpatch: the entry-point index {index} is not used because other users can write "
            "to it (mode -rw-rw-r--); other distributions' rules are discovered again.") in result.stderr
    assert data["after_install"] == [] and data["after_first_import"] == DISCOVERED
    assert data["patched"] is True and data["outcomes"] == [["example-pickler-valueerror", "applied"]]
    # Discovery wrote the index again, through the store: the same name, private to the user.
    assert list(cache.glob("entry-points-*.index")) == [index]
    assert stat.S_IMODE(index.stat().st_mode) == 0o600

    after = run(venv, PROBE, ASTPATCH_CACHE_DIR=str(cache))
    assert "AstpatchWarning" not in after.stderr
    assert probe(after)["after_first_import"] == [] and probe(after)["patched"] is True


def test_environments_sharing_a_cache_each_keep_their_own_index(venv, tmp_path):
    """A different sys.path is another environment: alternating two of them rediscovers only the first time each."""
    cache = tmp_path / "cache"
    extra = tmp_path / "extra"
    extra.mkdir()
    seen = []
    for environment in ("A", "B", "A", "B"):
        path = (extra,) if environment == "B" else ()
        data = probe(run(venv, PROBE, path=path, ASTPATCH_CACHE_DIR=str(cache)))
        assert data["patched"] is True, environment
        seen.append((environment, data["after_first_import"]))
    assert seen == [("A", DISCOVERED), ("B", DISCOVERED), ("A", []), ("B", [])]
    assert len(list(cache.glob("entry-points-*.index"))) == 2


FIND_SPEC_PROBE = r'''
import importlib.util, json, sys
import astpatch
astpatch.install()
spec = importlib.util.find_spec("pickler")
stage = {"loader": type(spec.loader).__name__, "metadata_read": "importlib.metadata" in sys.modules,
         "rules_imported_by_find_spec": "astpatch_example_rules" in sys.modules}
import pickler
print(json.dumps({**stage, "rules_imported_by_import": "astpatch_example_rules" in sys.modules,
                  "patched": "ValueError" in pickler.Pickler.dumps.__code__.co_names}))
'''


def test_finding_a_target_does_not_import_its_entry_point_rules_unless_tracing(venv, tmp_path):
    """Only the import of a target loads the rules pending from the index; a trace line that names
    them may load them too, but only when tracing is on."""
    cache = str(tmp_path / "cache")
    assert probe(run(venv, PROBE, ASTPATCH_CACHE_DIR=cache))["after_first_import"] == DISCOVERED  # writes the index

    quiet = probe(run(venv, FIND_SPEC_PROBE, ASTPATCH_CACHE_DIR=cache))
    assert quiet == {"loader": "PatchingLoader", "metadata_read": False, "rules_imported_by_find_spec": False,
                     "rules_imported_by_import": True, "patched": True}

    traced = run(venv, FIND_SPEC_PROBE, ASTPATCH_CACHE_DIR=cache, ASTPATCH_LOG="debug")
    assert probe(traced) == {**quiet, "rules_imported_by_find_spec": True}
    assert "astpatch: pickler: targeted by example-pickler-valueerror; found by SourceFileLoader" in traced.stderr


SECOND_PROBE = r'''
import json, sys, warnings
warnings.simplefilter("always")
import astpatch
astpatch.install()
import fractions
discovered = "importlib.metadata" in sys.modules
import pickler, second
print(json.dumps({"discovered": discovered, "patched": "ValueError" in pickler.Pickler.dumps.__code__.co_names,
                  "second": "ValueError" in second.Pickler.dumps.__code__.co_names}))
'''

SECOND_RULES = '''
from astpatch import AddExceptTypes, Rule

RULE = Rule(id="second-valueerror", summary="s", module="second", target="Pickler.dumps",
            edit=AddExceptTypes(add=("ValueError",), converts_to="Bypass"), upstream="test fixture")
'''


def install_second(directory: Path, entry_points: str) -> Path:
    """A distribution in `directory` (a sys.path entry) with this entry_points.txt, as pip leaves one."""
    dist = directory / "seconddist-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: seconddist\nVersion: 1.0\n\n")
    (dist / "entry_points.txt").write_text(entry_points)
    return dist


def test_other_files_created_on_the_search_path_leave_the_index_current(venv, tmp_path):
    """A file created in the current directory (sys.path's "" for `python -c`, a script's directory) or in
    another sys.path directory is no distribution: the next process reads the index, not the metadata."""
    python, site, root = venv
    cache = str(tmp_path / "cache")
    extra = tmp_path / "extra"
    extra.mkdir()
    assert probe(run(venv, PROBE, path=(extra,), ASTPATCH_CACHE_DIR=cache))["after_first_import"] == DISCOVERED
    (extra / "helper.py").write_text("")
    scratch = root / f"scratch-{os.getpid()}.txt"  # run() runs programs in `root`
    scratch.write_text("")
    try:
        data = probe(run(venv, PROBE, path=(extra,), ASTPATCH_CACHE_DIR=cache))
    finally:
        scratch.unlink()
    assert data["after_first_import"] == [] and data["patched"] is True


def test_a_distribution_installed_reinstalled_or_removed_on_any_search_path_entry_is_seen(venv, tmp_path):
    """Installing a distribution into a sys.path directory, reinstalling it (same name) without its entry point,
    removing it: each makes the index stale, and the next process's targets are right."""
    import shutil

    cache = str(tmp_path / "cache")
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "second.py").write_text(PICKLER_SOURCE)
    (extra / "second_rules.py").write_text(SECOND_RULES)

    def probe_second() -> tuple[bool, bool, bool]:
        data = probe(run(venv, SECOND_PROBE, path=(extra,), ASTPATCH_CACHE_DIR=cache))
        assert data["patched"] is True  # the example distribution's rule, throughout
        return data["discovered"], data["second"], bool(list((tmp_path / "cache").glob("entry-points-*.index")))

    assert probe_second() == (True, False, True)
    assert probe_second() == (False, False, True)
    dist = install_second(extra, "[astpatch.rules]\nsecond = second_rules\n")
    assert probe_second() == (True, True, True)
    assert probe_second() == (False, True, True)
    shutil.rmtree(dist)
    install_second(extra, "[console_scripts]\nsecond = second:main\n")
    assert probe_second() == (True, False, True)
    shutil.rmtree(dist)
    install_second(extra, "[astpatch.rules]\nsecond = second_rules\n")
    assert probe_second() == (True, True, True)
    shutil.rmtree(dist)
    # The distributions of the second probe again: the index (of the last state) is stale, but the start-up
    # record that probe wrote, once the files it depends on had settled, holds again and stands for them.
    assert probe_second()[1:] == (False, True)


def test_a_rule_module_changed_within_the_timestamp_granularity_is_seen_by_its_content(tmp_path, monkeypatch):
    """A status recorded less than two seconds after the file changed vouches for nothing by itself (the
    next change may keep it, git's "racy" entries): the content is compared; a settled status suffices."""
    import time

    from astpatch._base import evidence

    module = tmp_path / "rules_module.py"
    module.write_text("RULES = []\n")
    fixed = evidence.file_status(str(module))
    monkeypatch.setattr(evidence, "file_status", lambda path: fixed)  # a file system too coarse to see the change
    now = time.time_ns()
    racy = evidence.evidence(str(module), now)
    settled = evidence.evidence(str(module), now + 3_000_000_000)
    assert racy[2] is not None and settled[2] is None
    assert evidence.holds(racy) and evidence.holds(settled)
    module.write_text("RULES = [1]\n")
    assert not evidence.holds(racy)
    assert evidence.holds(settled)  # past the window, the status is trusted, as git trusts it


def test_a_settled_directory_is_listed_again_only_when_its_status_changes(tmp_path, monkeypatch):
    """install() checks the index with one stat a sys.path directory while the directory's status holds
    (settled: recorded two seconds after its last change); once it changes, the directory is listed again,
    and only a metadata directory appearing in it makes the index stale."""
    import time

    from astpatch._base import evidence

    directory = tmp_path / "site"
    directory.mkdir()
    monkeypatch.setattr(sys, "path", [str(directory)])
    later = time.time_ns() + 3_000_000_000
    monkeypatch.setattr(time, "time_ns", lambda: later)  # the stamp is taken when the directory has settled
    taken = evidence.stamp()
    listed = []
    names = evidence._names
    monkeypatch.setattr(evidence, "_names", lambda path: listed.append(path) or names(path))
    assert evidence.stamp_holds(taken) and listed == []
    (directory / "helper.py").write_text("")
    assert evidence.stamp_holds(taken) and listed == [str(directory)]
    install_second(directory, "[console_scripts]\nsecond = second:main\n")
    assert not evidence.stamp_holds(taken)
