"""`astpatch edit` and `commit` on real torch: torch 2.11's fix of `FxGraphCachePickler.dumps`, made
by editing a copy of torch 2.10's `torch/_inductor/codecache.py`, applied at import, then checked
against torch's released wheels.

The torch210 case needs real torch 2.10.0 installed; the wheels case reads the released wheels
(ASTPATCH_TEST_WHEELS), with 2.10's codecache.py laid out as an installed torch 2.10.0.
"""

from __future__ import annotations

import difflib
import json
import os
import zipfile
from pathlib import Path

import pytest

from astpatch._model.rulefiles import load_rule_file

from conftest import require_torch
from scenario import Scenario

MODULE = "torch._inductor.codecache"
COPY = Path("torch", "_inductor", "codecache.py")
RULE_ID = "codecache-fxgraphcachepickler-dumps-patch"
SHIPPED = "torch-fxgraph-cache-key-valueerror,torch-fxgraph-cache-key-pybind11-runtimeerror,torch-compile-caches-key-by-rules"

# torch 2.11.0's FxGraphCachePickler.dumps, as its codecache.py has it (the wheels case checks that).
DUMPS_2_11 = '''\
    def dumps(self, obj: Any) -> bytes:
        """
        Pickle an object and return a byte string.
        """
        try:
            self.dump(obj)
            return self._stream.getvalue()
        except (TypeError, AttributeError, pickle.PicklingError, ValueError) as e:
            # Some configs options may not pickle.
            log.warning("Failed to pickle cache key", exc_info=True)
            raise BypassFxGraphCache("Failed to pickle cache key") from e
        except RuntimeError as e:
            # pybind11 raises RuntimeError with message like:
            # "<pybind11_builtins... object at 0x...> is not pickleable."
            if "pybind11" in str(e) and "is not pickleable" in str(e):
                log.warning("Failed to pickle cache key", exc_info=True)
                raise BypassFxGraphCache("Failed to pickle cache key") from e
            raise
        finally:
            # Reset our stream for the next dump.
            self._stream.seek(0)
            self._stream.truncate(0)

'''

# What dumps does with values that raise ValueError (a reference cycle) and a pybind11 RuntimeError.
PROBE = '''
import astpatch, json, logging, sys
astpatch.install(rules=[sys.argv[1]], cache_dir=sys.argv[2])
import torch
from torch._inductor import codecache
from astpatch._base.lines import patched_source
from astpatch._hook.finder import SHOWN

logging.getLogger("torch._inductor.codecache").disabled = True
pickler = codecache.FxGraphCachePickler(torch.fx.symbolic_trace(torch.nn.Identity()))
cycle = []
cycle.append(cycle)
found = {}
for name, value in (("cycle", {"config": cycle}), ("pybind11", torch.ops.aten.add.default)):
    try:
        pickler.dumps(value)
        found[name] = None
    except Exception as error:
        found[name] = [type(error).__name__, type(error.__cause__).__name__]
print(json.dumps({"text": patched_source(*SHOWN[codecache.__file__]), "dumps": found,
                  "outcomes": [[o.rule_id, o.status] for o in astpatch.applied()]}))
'''


def dumps_of(source: str) -> tuple[int, int]:
    """Where FxGraphCachePickler.dumps is in a codecache.py: from its `def` to the next method's."""
    start = source.index("    def dumps(self, obj: Any) -> bytes:\n")
    return start, source.index("    def get_hash(", start)


def make_the_fix(copy: Path) -> None:
    """What the user does in the editor: 2.10's dumps becomes 2.11's."""
    text = copy.read_text()
    start, end = dumps_of(text)
    copy.write_text(text[:start] + DUMPS_2_11 + text[end:])


def edit_and_commit(scene: Scenario) -> tuple[str, Path]:
    """`astpatch edit` codecache, make the fix in the copy, `astpatch commit`; (installed path, copy)."""
    work = scene.tmp / "work"
    edited = scene.astpatch("edit", MODULE, "--dir", str(work))
    assert edited.returncode == 0, edited.stderr
    installed = json.loads((work / ".astpatch-edit.json").read_text())["files"][0]["installed"]
    copy = work / COPY
    assert copy.read_bytes() == Path(installed).read_bytes()
    make_the_fix(copy)
    made = scene.astpatch("commit", str(work), "-o", str(scene.tmp / "rules"), "--upstream", "torch 2.11.0")
    assert made.returncode == 0, made.stderr
    (rule,) = load_rule_file(str(scene.tmp / "rules" / "codecache_fxgraphcachepickler_dumps_patch.py"))
    assert (rule.id, rule.gate, rule.written_for) == (RULE_ID, "torch>=2.10,<2.11", "torch 2.10.0")
    assert [(c.module, c.scope) for c in rule.changes] == [(MODULE, "FxGraphCachePickler.dumps")]
    return installed, copy


@pytest.mark.torch210
def test_edit_commit_the_2_11_fix_on_torch_2_10_and_import_it(tmp_path):
    require_torch("2.10.0")
    scene = Scenario(tmp_path, source=None, rule_file=None, cwd=tmp_path)
    installed, copy = edit_and_commit(scene)
    rules = str(tmp_path / "rules")
    # A fresh process, the shipped rules off (they make the same fix): the user's rule runs.
    probe = scene.python(PROBE, rules, str(scene.cache), ASTPATCH_DISABLE=SHIPPED, timeout=900).json()
    assert probe["outcomes"] == [[RULE_ID, "applied"]]
    assert probe["text"] == copy.read_text()  # the text astpatch runs is the edited copy
    assert probe["dumps"] == {"cycle": ["BypassFxGraphCache", "ValueError"],
                              "pybind11": ["BypassFxGraphCache", "RuntimeError"]}
    shown = scene.astpatch("diff", "--rules", rules, RULE_ID)
    assert shown.stdout == "".join(difflib.unified_diff(
        Path(installed).read_text().splitlines(True), copy.read_text().splitlines(True),
        f"{installed} (upstream)", f"{installed} (astpatch)"))
    checked = json.loads(scene.astpatch("check", "--rules", rules, "--rule", RULE_ID, "--json").stdout)
    result = checked["columns"][0]["results"][RULE_ID]
    assert (result["outcome"], result["verdict"], result["version"]) == ("applied", "applies", "2.10.0")


def wheels() -> dict[str, Path]:
    directory = os.environ.get("ASTPATCH_TEST_WHEELS")
    if not directory:
        pytest.fail("ASTPATCH_TEST_WHEELS is not set; run `python3 tools/test.py --tier wheels`")
    found = {}
    for version in ("2.9.1", "2.10.0", "2.11.0", "2.12.0", "2.13.0"):
        matches = sorted(Path(directory).glob(f"torch-{version}[-+]*.whl"))
        assert matches, f"no torch {version} wheel in {directory}"
        found[version] = matches[0]
    return found


@pytest.mark.wheels
def test_check_the_edited_rule_against_the_released_wheels(tmp_path):
    """2.11 and 2.12 have the change (upstream: delete the rule); 2.9.1 (before the PicklingError
    clause) and 2.13 (whose fixed clause calls a helper) have other text there (conflicts)."""
    found = wheels()
    scene = Scenario(tmp_path, source=None, rule_file=None, dist="torch", version="2.10.0", cwd=tmp_path)
    with zipfile.ZipFile(found["2.10.0"]) as z:
        scene.write(MODULE, z.read(COPY.as_posix()).decode("utf-8"))
    (next(scene.site.glob("torch-*.dist-info")) / "top_level.txt").write_text("torch\n")
    with zipfile.ZipFile(found["2.11.0"]) as z:
        upstream = z.read(COPY.as_posix()).decode("utf-8")
    start, end = dumps_of(upstream)
    assert upstream[start:end] == DUMPS_2_11  # the change made in the copy is upstream's own
    edit_and_commit(scene)
    against = [arg for path in found.values() for arg in ("--against", str(path))]
    result = scene.astpatch("check", "--rules", str(tmp_path / "rules"), "--rule", RULE_ID, *against, "--json",
                            timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(result.stdout)
    assert data["written_for"] == {RULE_ID: "torch 2.10.0"}
    assert [(c["version"], c["results"][RULE_ID]["outcome"], c["results"][RULE_ID]["verdict"]) for c in data["columns"]
            ] == [("2.9.1", "not-applicable", "conflicts"), ("2.10.0", "applied", "applies"),
                  ("2.11.0", "already-fixed", "upstream"), ("2.12.0", "already-fixed", "upstream"),
                  (data["columns"][4]["version"], "not-applicable", "conflicts")]
    assert data["columns"][4]["version"].startswith("2.13.0")
    text = scene.astpatch("check", "--rules", str(tmp_path / "rules"), "--rule", RULE_ID, *against, timeout=900).stdout
    verdicts = [cell.strip() for cell in text.splitlines()[4].split("  ") if cell.strip()]
    assert verdicts == [RULE_ID, "torch 2.10.0", "conflicts: re-edit it", "still applies", "upstream: delete it",
                        "upstream: delete it", "conflicts: re-edit it"]
