"""What install() costs at start-up, and the environment switches, in fresh interpreters."""

from __future__ import annotations

import os
import time
from pathlib import Path

from astpatch._base.evidence import RACY_NS

from conftest import RULE_FILE, check
from scenario import Scenario

INSTALL_ONLY = '''
import json, sys
events = []
def audit(event, args):
    if event == "open" and isinstance(args[0], str) and (".dist-info" in args[0] or ".egg-info" in args[0]):
        events.append(("open", args[0]))
    if event == "os.listdir":
        events.append(("listdir", str(args[0])))
import astpatch
sys.addaudithook(audit)
astpatch.install(rules=[{rules!r}])
heavy = [m for m in ("libcst", "importlib.metadata", "packaging", "pickler", "ast") if m in sys.modules]
from astpatch._model.rulefiles import builtin_rules_dir
import os
print(json.dumps({{"heavy": heavy, "events": events, "package": astpatch.__path__[0], "rules": builtin_rules_dir(),
                  "stdlib": os.path.dirname(os.__file__)}}))
'''


def test_install_imports_nothing_heavy_and_reads_no_metadata(tmp_path):
    s = Scenario(tmp_path, gate="pickledist>=1")
    for attempt in ("first", "indexed"):
        data = s.python(INSTALL_ONLY.format(rules=str(s.rule)), ASTPATCH_CACHE_DIR=str(s.cache)).json()
        assert data["heavy"] == []
        # The only directory listings are astpatch's own: the shipped rules (inside the package when
        # installed, `rules/` beside it in a checkout) before the rule-file index has them, and its
        # subpackages as the import system finds their modules; and on 3.10 the standard library's
        # `importlib` package, which the rule files' loader subclasses. No metadata is read, no other
        # directory (site-packages) listed.
        assert data["events"] and all(
            kind == "listdir" and (path.startswith(data["package"]) or path == data["rules"]
                                   or path == os.path.join(data["stdlib"], "importlib"))
            for kind, path in data["events"]), data["events"]
        listed = [path for _, path in data["events"] if path.endswith("/rules")]
        assert listed == ([data["rules"]] if attempt == "first" else []), attempt


# What `import astpatch; astpatch.install()` loads when it installs from the start-up record
# (`astpatch._hook.record`): the finder with what a cache hit runs (cache, outcomes, lines); no rule
# set, no edit kind, no rule file executed, no rewrite engine, and nothing of the standard library
# (these modules do without `from __future__ import annotations`, whose module would be one more).
STARTUP_MODULES = {
    "astpatch", "astpatch._base", "astpatch._base.cache", "astpatch._base.evidence", "astpatch._base.lines",
    "astpatch._base.messages", "astpatch._base.outcomes", "astpatch._base.settings", "astpatch._base.store",
    "astpatch._hook", "astpatch._hook.finder", "astpatch._hook.installation", "astpatch._hook.record",
    "astpatch._hook.session",
}
# And what it loads when it builds the rule set from a current rule-file index instead (no record yet:
# the files are too recent for their status to vouch for them).
BUILDING_MODULES = STARTUP_MODULES | {
    "astpatch._hook.building", "astpatch._model", "astpatch._model.entrypoints", "astpatch._model.rulefiles",
    "astpatch._model.ruleindex", "astpatch._model.ruleset",
}

LOADED = """
import json, sys
before = set(sys.modules)
import astpatch
imported = set(sys.modules) - before
handle = astpatch.install(rules={rules!r}, cache_dir={cache!r})
installed = set(sys.modules) - before
import pickler
print(json.dumps({{"import": sorted(imported), "install": sorted(installed), "targets": sorted(handle.targets),
                  "patched": "ValueError" in pickler.Pickler.dumps.__code__.co_names}}))
"""


def test_import_and_install_load_only_what_installing_the_finder_needs(tmp_path):
    """`import astpatch` loads that module alone; `install()` with a current index the modules listed above,
    with a start-up record fewer, with ten rule files as with one, and libcst, the edit kinds and the rule
    files when their module is imported."""
    s = Scenario(tmp_path, rule_dir=True)
    for n in range(9):
        (s.rules / f"other_{n}.py").write_text(RULE_FILE.replace("pickler", f"absent{n}"))
    code = LOADED.format(rules=[str(s.rules)], cache=str(s.cache))
    first = s.python(code).json()
    assert first["patched"] and set(first["install"]) > BUILDING_MODULES | {"astpatch._model.rule"}
    for attempt, expected in (("indexed", BUILDING_MODULES), ("recording", None), ("recorded", STARTUP_MODULES),
                              ("again", STARTUP_MODULES)):
        if attempt == "recording":
            time.sleep(RACY_NS / 1e9 + 0.1)  # the files settle: this process writes the record
        data = s.python(code).json()
        assert data["import"] == ["astpatch"], attempt
        assert expected is None or set(data["install"]) == expected, (attempt, set(data["install"]) ^ (expected or set()))
        assert data["patched"] and data["targets"] == first["targets"] == sorted(
            ["pickler", "torch._inductor.codecache", *(f"absent{n}" for n in range(9))])


def test_the_public_names_are_importable_from_astpatch(tmp_path):
    """Each public name loads on first use, in a fresh interpreter, as the object its module defines."""
    code = """
import importlib, json, astpatch
from astpatch import *
print(json.dumps([n for n in astpatch.__all__
                  if globals()[n] is not getattr(importlib.import_module("astpatch" + astpatch._EXPORTS[n]), n)]))
"""
    assert Scenario(tmp_path, rule_file=None).python(code).json() == []


PROBE = '''
import sys, warnings
warnings.simplefilter("always")
import astpatch
astpatch.install(rules=[{rules!r}], cache_dir=False)
import pickler
print("patched" if "ValueError" in pickler.Pickler.dumps.__code__.co_names else "upstream")
print(len([f for f in sys.meta_path if type(f).__name__ == "PatchingFinder"]))
'''


def run_probe(tmp_path, **env):
    s = Scenario(tmp_path)
    return s.python(PROBE.format(rules=str(s.rule)), **env)


def test_disable_turns_astpatch_off(tmp_path):
    result = run_probe(tmp_path, ASTPATCH_DISABLE="1")
    assert check(result).split() == ["upstream", "0"]
    assert result.stderr == ""


def test_disable_one_rule(tmp_path):
    result = run_probe(tmp_path, ASTPATCH_DISABLE="pickler-valueerror")
    assert check(result).split() == ["upstream", "1"]
    assert result.stderr == ""


def test_disable_an_unknown_rule_says_so(tmp_path):
    result = run_probe(tmp_path, ASTPATCH_DISABLE="no-such-rule")
    assert check(result).split() == ["patched", "1"]
    assert "ASTPATCH_DISABLE names 'no-such-rule', which is no known rule id" in result.stderr


def test_strict_from_the_environment_raises(tmp_path):
    s = Scenario(tmp_path, rule_file=RULE_FILE.replace('target="Pickler.dumps"', 'target="Pickler.gone"'))
    result = s.python(PROBE.format(rules=str(s.rule)), ASTPATCH_STRICT="1")
    assert result.returncode == 1
    assert "astpatch._base.messages.AstpatchError: astpatch: rule pickler-valueerror was not applied to pickler: " \
           "Pickler.gone is not defined in Pickler" in result.stderr


def test_an_unknown_switch_value_is_reported(tmp_path):
    result = run_probe(tmp_path, ASTPATCH_STRICT="maybe")
    assert check(result).split() == ["patched", "1"]
    assert "ignoring ASTPATCH_STRICT='maybe': use 1 to turn it on or 0 to turn it off" in result.stderr


def test_gate_reads_the_installed_version(tmp_path):
    s = Scenario(tmp_path, gate="pickledist>=1", version="0.5")
    code = PROBE.format(rules=str(s.rule)) + "print(astpatch.applied()[0].reason)\n"
    out = check(s.python(code))
    assert out.split("\n")[0] == "upstream"
    assert "pickledist 0.5 is outside the gate pickledist>=1" in out
    s.install_dist("1.0a0+git123")
    assert check(s.python(code)).split("\n")[0] == "patched"


USER_MODULE = '''
import warnings

import astpatch


def install(path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        astpatch.install(rules=[path], cache_dir=False)
    return [[str(w.message), w.filename] for w in caught]
'''

ATTRIBUTION = '''
import json, sys
sys.path.insert(0, {user_dir!r})
import astpatch, usermod
print(json.dumps({{"astpatch": astpatch.__file__, "warnings": usermod.install({missing!r})}}))
'''


def test_a_warning_is_attributed_to_user_code_whose_path_starts_like_astpatchs(tmp_path):
    """A user module in `<astpatch's directory>_user/` is the user's code, not astpatch's: warnings point at it."""
    import shutil

    import astpatch
    from astpatch._model.rulefiles import builtin_rules_dir

    # A copy of astpatch, so that a directory named like its own can be made beside it.
    s = Scenario(tmp_path, source=None, rule_file=None, cwd=tmp_path)
    package = s.site / "astpatch"
    shutil.copytree(Path(astpatch.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    if not (package / "rules").is_dir():
        shutil.copytree(builtin_rules_dir(), package / "rules", ignore=shutil.ignore_patterns("__pycache__"))
    user_dir = s.site / "astpatch_user"
    user_dir.mkdir()
    (user_dir / "usermod.py").write_text(USER_MODULE)
    missing = tmp_path / "nowhere"
    data = s.python(ATTRIBUTION.format(user_dir=str(user_dir), missing=str(missing))).json()
    assert data["astpatch"] == str(package / "__init__.py")
    assert data["warnings"] == [[f"astpatch: rule path {missing} does not exist; its rules are not loaded.",
                                 str(user_dir / "usermod.py")]]
