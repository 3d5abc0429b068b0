"""The astpatch command line, run for real in subprocesses, on sources the tests write."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import time
import zipfile

import pytest

from conftest import PICKLER_SOURCE, RULE_FILE
from scenario import Scenario

FIXED_SOURCE = PICKLER_SOURCE.replace("(TypeError, AttributeError)", "(TypeError, AttributeError, ValueError)")


@pytest.fixture
def scene(tmp_path):
    """A gated rule in a rule directory, its distribution installed; commands run in tmp_path."""
    return Scenario(tmp_path, gate="pickledist>=1", version="1.2", rule_dir=True, cwd=tmp_path)


def known_ids() -> str:
    from astpatch._model.rulefiles import builtin_rules_dir
    from astpatch._model.ruleset import load_rules

    return ", ".join(sorted([r.id for r in load_rules([builtin_rules_dir()], print)] + ["pickler-valueerror"]))


def one_line_error(result: subprocess.CompletedProcess, text: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == f"astpatch: error: {text}"


def test_help_on_every_command(scene):
    for command in ([], ["list"], ["diff"], ["check"], ["run"], ["new"], ["edit"], ["commit"], ["cache"], ["cache", "warm"],
                    ["cache", "prune"]):
        result = scene.astpatch(*command, "--help")
        assert result.returncode == 0 and "usage: astpatch" in result.stdout, command


def test_list(scene):
    result = scene.astpatch("list", "--json")
    assert result.returncode == 0, result.stderr
    (row,) = [r for r in json.loads(result.stdout) if r["id"] == "pickler-valueerror"]
    assert row["outcome"] == "applied" and row["version"] == "1.2" and row["gate"] == "pickledist>=1"
    text = scene.astpatch("list").stdout
    assert "pickler-valueerror: would apply" in text and "target:   pickler:Pickler.dumps" in text


def test_list_states(scene):
    scene.module.write_text(FIXED_SOURCE)
    assert "pickler-valueerror: already fixed upstream" in scene.astpatch("list").stdout
    scene.module.write_text(PICKLER_SOURCE.replace("def dumps", "def dump"))
    result = scene.astpatch("list")
    assert result.returncode == 1 and "pickler-valueerror: target missing" in result.stdout
    scene.module.unlink()
    result = scene.astpatch("list")
    assert result.returncode == 0 and "pickler-valueerror: target module not installed" in result.stdout


def test_diff_plain_stat_and_json(scene):
    result = scene.astpatch("diff", "pickler-valueerror")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0] == f"--- {scene.site / 'pickler.py'} (upstream)"
    assert "-        except (TypeError, AttributeError) as e:" in lines
    assert "+        except (TypeError, AttributeError, ValueError) as e:" in lines
    assert "\033[" not in result.stdout  # not a terminal: no colour
    assert "\033[32m+" in scene.astpatch("diff", "--color=always").stdout
    assert scene.astpatch("diff", "--stat").stdout.splitlines()[0].startswith("pickler: +1 -1 ")
    (entry,) = json.loads(scene.astpatch("diff", "--json", "pickler").stdout)
    assert entry["rules"] == ["pickler-valueerror"] and entry["added"] == 1


def test_diff_is_computed_afresh_not_from_the_cache(scene):
    scene.astpatch("cache", "warm")
    scene.module.write_text(FIXED_SOURCE)
    assert scene.astpatch("diff").stdout == ""


def build_wheel(path, version: str, source: str) -> None:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("pickler.py", source)
        z.writestr(f"pickledist-{version}.dist-info/METADATA", f"Metadata-Version: 2.1\nName: pickledist\nVersion: {version}\n\n")


def build_sdist(path, version: str, source: str) -> None:
    root = path.parent / f"pickledist-{version}"
    (root / "src").mkdir(parents=True)
    (root / "src" / "pickler.py").write_text(source)
    (root / "PKG-INFO").write_text(f"Metadata-Version: 2.1\nName: pickledist\nVersion: {version}\n\n")
    with tarfile.open(path, "w:gz") as t:
        t.add(root, arcname=root.name)


def test_check_matrix_across_kinds_of_sources(scene):
    old = scene.tmp / "pickledist-0.9-py3-none-any.whl"
    build_wheel(old, "0.9", PICKLER_SOURCE)
    buggy = scene.tmp / "pickledist-1.0-py3-none-any.whl"
    build_wheel(buggy, "1.0", PICKLER_SOURCE)
    fixed = scene.tmp / "pickledist-2.0.tar.gz"
    build_sdist(fixed, "2.0", FIXED_SOURCE)
    single = scene.tmp / "pickler_copy.py"
    single.write_text(PICKLER_SOURCE)
    result = scene.astpatch("check", "--rule", "pickler-valueerror", "--against", str(old), "--against", str(buggy),
                            "--against", str(fixed), "--against", str(scene.site), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [c["label"] for c in data["columns"]] == ["pickledist 0.9", "pickledist 1.0", "pickledist 2.0", "pickledist 1.2"]
    assert [c["results"]["pickler-valueerror"]["outcome"] for c in data["columns"]] == [
        "not-applicable", "applied", "already-fixed", "applied"]
    # Each outcome's verdict: below its gate the edit would still apply; then applies; upstream.
    assert [c["results"]["pickler-valueerror"]["verdict"] for c in data["columns"]] == [
        "outside-gate", "applies", "upstream", "applies"]
    assert data["columns"][0]["results"]["pickler-valueerror"]["without_gate"]["outcome"] == "applied"
    assert "without_gate" not in data["columns"][1]["results"]["pickler-valueerror"]
    assert data["written_for"] == {"pickler-valueerror": None}
    text = scene.astpatch("check", "--rule", "pickler-valueerror", "--against", str(old),
                          "--against", str(buggy), "--against", str(fixed)).stdout
    assert text.splitlines()[1].split() == ["pickler-valueerror", "not-applicable", "applied", "already-fixed"]
    assert text.splitlines()[3].split() == ["verdict", "written", "for", "pickledist", "0.9", "pickledist", "1.0",
                                            "pickledist", "2.0"]
    assert [cell.strip() for cell in text.splitlines()[4].split("  ") if cell.strip()] == [
        "pickler-valueerror", "-", "outside its gate", "still applies", "upstream: delete it"]
    # A single file has no metadata: the version comes from --dist-version.
    result = scene.astpatch("check", "--rule", "pickler-valueerror", "--against", str(single), "--dist-version", "1.5",
                            "--json")
    assert json.loads(result.stdout)["columns"][0]["results"]["pickler-valueerror"]["outcome"] == "applied"


def test_check_finds_a_stale_rule(scene):
    moved = scene.tmp / "pickledist-3.0-py3-none-any.whl"
    build_wheel(moved, "3.0", PICKLER_SOURCE.replace("raise Bypass", "return None  #"))
    result = scene.astpatch("check", "--rule", "pickler-valueerror", "--against", str(moved))
    assert result.returncode == 1
    assert "pickler-valueerror @ pickledist 3.0: failed: the edit does not apply: no except clause" in result.stdout
    assert "1 stale" in result.stdout
    assert result.stdout.splitlines()[4].split() == ["pickler-valueerror", "-", "conflicts:", "re-edit", "it"]
    # Outside its gate, the rule does nothing there: its edit, tried without the gate, says it would conflict.
    outside = scene.tmp / "pickledist-0.5-py3-none-any.whl"
    build_wheel(outside, "0.5", PICKLER_SOURCE.replace("raise Bypass", "return None  #"))
    result = scene.astpatch("check", "--rule", "pickler-valueerror", "--against", str(outside), "--json")
    assert result.returncode == 0
    found = json.loads(result.stdout)["columns"][0]["results"]["pickler-valueerror"]
    assert (found["outcome"], found["verdict"], found["without_gate"]["outcome"]) == ("not-applicable", "conflicts", "failed")
    text = scene.astpatch("check", "--rule", "pickler-valueerror", "--against", str(outside)).stdout
    assert ("pickler-valueerror @ pickledist 0.5: not-applicable: pickledist 0.5 is outside the gate pickledist>=1\n"
            "  without its gate: failed: the edit does not apply: no except clause") in text


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_bytes(os.urandom(2000)), "is not a readable wheel: File is not a zip file"),
    (lambda p: p.write_bytes(b""), "is not a readable wheel: File is not a zip file"),
])
def test_check_a_corrupt_wheel(scene, make, message):
    wheel = scene.tmp / "broken-1.0-py3-none-any.whl"
    make(wheel)
    one_line_error(scene.astpatch("check", "--against", str(wheel)), f"{wheel} {message}")


def test_check_malformed_input(scene):
    missing = scene.tmp / "nowhere.whl"
    one_line_error(scene.astpatch("check", "--against", str(missing)), f"{missing} does not exist")
    one_line_error(scene.astpatch("check", "--rule", "no-such-rule"),
                   f"no rule has the id or module 'no-such-rule' (known rule ids: {known_ids()})")
    other = scene.tmp / "notes.txt"
    other.write_text("hello")
    one_line_error(scene.astpatch("check", "--against", str(other)),
                   f"{other} is not a wheel (.whl), an sdist (.tar.gz), a directory or a .py file")
    one_line_error(scene.astpatch("diff", "nothing-like-this"),
                   f"no rule has the id or module 'nothing-like-this' (known rule ids: {known_ids()})")
    result = scene.astpatch("frobnicate")
    assert result.returncode == 2 and "invalid choice: 'frobnicate'" in result.stderr and "Traceback" not in result.stderr


def test_a_broken_rule_file_is_reported_and_the_others_still_work(scene):
    (scene.rules / "broken.py").write_text("RULES = [1]\n")
    result = scene.astpatch("list", "--json")
    assert result.returncode == 0
    assert (f"rule file {scene.rules / 'broken.py'}: 1 is not an astpatch.Rule. The other rules still apply."
            in result.stderr)
    assert "pickler-valueerror" in [r["id"] for r in json.loads(result.stdout)]


def test_rules_option(scene, tmp_path):
    extra = tmp_path / "extra.py"
    extra.write_text(RULE_FILE.replace("pickler-valueerror", "pickler-keyerror").replace('"ValueError"', '"KeyError"'))
    data = json.loads(scene.astpatch("list", "--json", "--rules", str(extra)).stdout)
    assert {"pickler-valueerror", "pickler-keyerror"} <= {r["id"] for r in data}
    one_line_error(scene.astpatch("list", "--rules", str(tmp_path / "none.py")),
                   f"rule path {tmp_path / 'none.py'} does not exist")


PROGRAM = '''
import sys
import pickler
print("patched" if "ValueError" in pickler.Pickler.dumps.__code__.co_names else "upstream", sys.argv[1:])
'''


def test_run_a_script_a_module_and_code(scene):
    script = scene.tmp / "prog.py"
    script.write_text(PROGRAM)
    result = scene.astpatch("run", "--", str(script), "a", "b")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "patched ['a', 'b']"
    (scene.site / "progmod.py").write_text(PROGRAM)
    assert scene.astpatch("run", "--", "-m", "progmod", "x").stdout.strip() == "patched ['x']"
    code = "import pickler, sys; print('ValueError' in pickler.Pickler.dumps.__code__.co_names, sys.argv)"
    assert scene.astpatch("run", "--", "-c", code, "z").stdout.strip() == "True ['-c', 'z']"


def test_run_selected_rules_strict_and_exit_status(scene):
    script = scene.tmp / "prog.py"
    script.write_text(PROGRAM + "raise SystemExit(3)\n")
    result = scene.astpatch("run", "--rule", "torch-fxgraph-cache-key-valueerror", "--", str(script))
    assert result.returncode == 3 and result.stdout.split()[0] == "upstream"
    scene.module.write_text(PICKLER_SOURCE.replace("def dumps", "def dump"))
    strict = scene.astpatch("run", "--strict", "--", str(script))
    assert strict.returncode == 1 and "AstpatchError" in strict.stderr
    one_line_error(scene.astpatch("run"), "nothing to run: give a script, -m module, -c code or a command, and its "
                   "arguments")  # a missing file or command: tests/test_run_command.py


def test_cache_dir_info_warm_clear(scene):
    assert scene.astpatch("cache", "dir").stdout.strip() == str(scene.cache)
    warm = scene.astpatch("cache", "warm")
    assert warm.returncode == 0, warm.stderr
    assert "pickler: pickler-valueerror: applied" in warm.stdout
    # The shipped rules' target is not installed in the engine environments: named once, as skipped.
    torch_lines = [line for line in warm.stdout.splitlines() if line.startswith("torch.")]
    assert torch_lines == ["torch._inductor.codecache: skipped: torch is not installed (not found on sys.path)"]
    info = json.loads(scene.astpatch("cache", "info", "--json").stdout)
    (entry,) = [e for e in info["entries"] if e.get("module") == "pickler"]
    assert entry["outcomes"] == [{"rule": "pickler-valueerror", "outcome": "applied"}]
    # The warmed entry is what a process uses: no libcst import.
    probe = "import sys, pickler; print('libcst' in sys.modules, 'ValueError' in pickler.Pickler.dumps.__code__.co_names)"
    assert scene.astpatch("run", "--", "-c", probe).stdout.split() == ["False", "True"]
    assert scene.astpatch("cache", "clear").stdout.startswith("removed ")
    assert json.loads(scene.astpatch("cache", "info", "--json").stdout)["entries"] == []
    assert scene.astpatch("cache", "dir", ASTPATCH_NO_CACHE="1").stdout.strip() == "off"


def test_cache_prune(scene):
    assert scene.astpatch("cache", "warm").returncode == 0
    (entry,) = scene.entries()
    size = entry.stat().st_size
    # Under the default bound, nothing to remove.
    nothing = json.loads(scene.astpatch("cache", "prune", "--json").stdout)
    assert nothing == {"directory": str(scene.cache), "max_bytes": 256 * 2**20, "removed": [],
                       "remaining": {"files": 1, "bytes": size}}
    # A temporary file of a writer that died (pid 2**22 + 1 is above Linux's pid limit) two minutes ago.
    orphan = scene.cache / f".{entry.name}.{2**22 + 1}.1.tmp"
    orphan.write_bytes(b"partial")
    two_minutes_ago = time.time() - 120
    os.utime(orphan, (two_minutes_ago, two_minutes_ago))
    long_ago = time.time() - 40 * 86400
    os.utime(entry, (long_ago, long_ago))
    old = json.loads(scene.astpatch("cache", "prune", "--older-than", "30", "--json").stdout)
    assert old["removed"] == [{"file": orphan.name, "size": 7, "why": "a temporary file of a writer that died"},
                              {"file": entry.name, "size": size, "why": "unused for 40 days"}]
    assert old["remaining"] == {"files": 0, "bytes": 0} and list(scene.cache.iterdir()) == []
    assert scene.astpatch("cache", "warm").returncode == 0
    # Written again: its size may differ (the evidence for the versions it records can be another
    # kind once the distribution's metadata is older than the racy window).
    size = entry.stat().st_size
    assert scene.astpatch("cache", "prune", "--max-size", "1K").stdout.splitlines() == [
        f"removed 1 files ({size} bytes) from {scene.cache}; 0 files (0 bytes) remain",
        f"  {entry.name}  {size} bytes  least recently used, beyond 1024 bytes"]
    assert list(scene.cache.iterdir()) == []
    one_line_error(scene.astpatch("cache", "prune", "--max-size", "12X"),
                   "--max-size must be a number of bytes, with K, M or G for a multiple: '12X'")
    one_line_error(scene.astpatch("cache", "prune", "--older-than", "-1"), "--older-than must be a number of days, 0 or more: -1.0")
    assert scene.astpatch("cache", "prune", ASTPATCH_NO_CACHE="1").stdout.strip() == "the cache is off (ASTPATCH_NO_CACHE=1)"


@pytest.mark.parametrize("command", [("clear",), ("prune", "--max-size", "1K")])
def test_cache_files_that_cannot_be_removed(scene, command):
    """A file that cannot be removed (a read-only mount): one line on stderr for it, exit 1."""
    assert scene.astpatch("cache", "warm").returncode == 0
    (entry,) = scene.entries()
    result = scene.astpatch("cache", *command, read_only=(scene.cache,))
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert f"astpatch: cannot remove {entry}: Read-only file system" in result.stderr.splitlines()
    assert "Traceback" not in result.stderr and entry.exists()


def pickler_diff(scene) -> str:
    """Upstream's fix of the test module, as a unified diff file."""
    import difflib

    diff = scene.tmp / "fix.diff"
    diff.write_text("".join(difflib.unified_diff(PICKLER_SOURCE.splitlines(True), FIXED_SOURCE.splitlines(True),
                                                 "a/pickler.py", "b/pickler.py")))
    return str(diff)


@pytest.mark.parametrize("where, problem", [
    ("under a regular file", "Not a directory"),
    ("a regular file", "File exists"),
])
def test_new_into_a_directory_that_cannot_be_written(scene, where, problem):
    blocker = scene.tmp / "blocker"
    blocker.write_text("not a directory")
    output = blocker / "rules" if where == "under a regular file" else blocker
    result = scene.astpatch("new", "--from-diff", pickler_diff(scene), "--id", "pickler-fix", "-o", str(output))
    path = output / "pickler_fix.py"
    one_line_error(result, f"cannot write {path}: {problem}")
    assert result.stdout == ""
    # The same command with a usable directory writes the rule file: only the directory was wrong.
    made = scene.astpatch("new", "--from-diff", pickler_diff(scene), "--id", "pickler-fix",
                          "-o", str(scene.tmp / "out"))
    assert made.returncode == 0 and (scene.tmp / "out" / "pickler_fix.py").is_file(), made.stderr


@pytest.mark.parametrize("where", ["under a regular file", "read-only"])
def test_cache_warm_into_a_directory_that_cannot_be_written(scene, where):
    blocker = scene.tmp / "blocker"
    blocker.write_text("not a directory")
    if where == "under a regular file":
        scene.cache = blocker / "cache"
    else:
        scene.cache.mkdir(mode=0o700)  # then mounted read-only: unwritable even for root
    cache = scene.cache
    result = scene.astpatch("cache", "warm", read_only=(cache,) if where == "read-only" else ())
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert "pickler: pickler-valueerror: applied" in result.stdout.splitlines()
    warning, summary = result.stderr.splitlines()
    assert warning.startswith(f"astpatch: cannot {'use' if where == 'under a regular file' else 'write to'} the cache "
                              f"directory {cache} (") and "patched without caching" in warning
    assert summary == f"astpatch: nothing could be stored in {cache} (see the warning above)"
    if where == "read-only":
        assert list(cache.iterdir()) == []


def named_rule_failures(result: subprocess.CompletedProcess) -> list[str]:
    """The lines on stderr that report a rule file the user named as failing to load."""
    assert "Traceback" not in result.stderr
    return [line for line in result.stderr.splitlines() if line.startswith("astpatch: error: rule file ")]


@pytest.mark.parametrize("layout", ["file", "directory"])
def test_a_broken_rule_file_the_user_named_fails_the_command(scene, tmp_path, layout):
    """A CI job that names its rules must not stay green when one of them cannot be loaded; the other
    rules are still reported. (ASTPATCH_RULES, the scene's, keeps its warning: see the test above.)"""
    named = tmp_path / "mine"
    named.mkdir()
    broken = named / "broken.py"
    broken.write_text("RULES = [\n")
    good = named / "good.py"
    good.write_text(RULE_FILE.replace("pickler-valueerror", "pickler-keyerror").replace('"ValueError"', '"KeyError"'))
    given = str(named) if layout == "directory" else str(broken)
    problem = f"astpatch: error: rule file {broken} failed to load: SyntaxError: "
    for command in (["check"], ["list", "--json"], ["diff", "--json"]):
        result = scene.astpatch(*command, "--rules", given)
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        (line,) = named_rule_failures(result)
        assert line.startswith(problem), line
        assert "pickler-valueerror" in result.stdout, command  # the others are still reported
        if layout == "directory" and command[0] == "list":
            assert "pickler-keyerror" in {r["id"] for r in json.loads(result.stdout)}
    fine = scene.astpatch("check", "--rules", str(good))
    assert fine.returncode == 0 and not named_rule_failures(fine), fine.stderr


def diff_on_a_terminal(scene, **env: str | None) -> str:
    """`astpatch diff` with its stdout on a pseudo-terminal: what it wrote there."""
    import pty

    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen([sys.executable, "-m", "astpatch", "diff"], stdout=terminal, stderr=subprocess.PIPE,
                                   env=scene.env(**scene.settings(), **env), cwd=scene.cwd)
        os.close(terminal)
        chunks = []
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the terminal's other end closed (Linux)
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert process.wait(timeout=120) == 0, process.stderr.read() if process.stderr else ""
    finally:
        os.close(controller)
    output = b"".join(chunks).decode()
    assert "+        except (TypeError, AttributeError, ValueError) as e:" in output
    return output


def piped_diff(scene, *args: str, **env: str | None) -> str:
    result = scene.astpatch("diff", *args, **env)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_diff_colour_follows_no_color_force_color_and_term(scene):
    plain = {"NO_COLOR": None, "FORCE_COLOR": None, "TERM": "xterm"}
    assert "\033[32m+" in diff_on_a_terminal(scene, **plain)
    assert "\033[" not in diff_on_a_terminal(scene, **{**plain, "TERM": "dumb"})
    assert "\033[" not in diff_on_a_terminal(scene, **{**plain, "NO_COLOR": "1"})
    assert "\033[" not in piped_diff(scene, **plain)
    assert "\033[32m+" in piped_diff(scene, **{**plain, "FORCE_COLOR": "1"})
    assert "\033[32m+" in piped_diff(scene, **{**plain, "FORCE_COLOR": "1", "TERM": "dumb"})
    assert "\033[" not in piped_diff(scene, **{**plain, "FORCE_COLOR": "1", "NO_COLOR": "1"})  # NO_COLOR wins
    assert "\033[" not in piped_diff(scene, **{**plain, "FORCE_COLOR": "0"})
    assert "\033[32m+" in piped_diff(scene, "--color=always", **{**plain, "NO_COLOR": "1"})  # asked for by name


def test_cache_warm_rules_before_or_after_warm(scene, tmp_path):
    extra = tmp_path / "extra.py"
    extra.write_text(RULE_FILE.replace("pickler-valueerror", "pickler-keyerror").replace('"ValueError"', '"KeyError"'))
    for args in (["cache", "warm", "--rules", str(extra)], ["cache", "--rules", str(extra), "warm"]):
        result = scene.astpatch(*args)
        assert result.returncode == 0, (args, result.stderr)
        assert "pickler: pickler-keyerror: " in result.stdout, args
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('no')\n")
    result = scene.astpatch("cache", "warm", "--rules", str(broken))
    assert result.returncode == 1 and "pickler: pickler-valueerror: " in result.stdout
    assert named_rule_failures(result) == [f"astpatch: error: rule file {broken} failed to load: RuntimeError: no"]


@pytest.mark.parametrize("args, prog, message", [
    (["--bogus"], "astpatch", "unrecognized arguments: --bogus"),
    (["check", "--bogus"], "astpatch check", "unrecognized arguments: --bogus"),
    (["cache", "warm", "--bogus"], "astpatch cache warm", "unrecognized arguments: --bogus"),
    (["cache"], "astpatch cache", "the following arguments are required: ACTION"),
    ([], "astpatch", "the following arguments are required: COMMAND"),
])
def test_argument_errors_name_the_command(scene, args, prog, message):
    result = scene.astpatch(*args)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == f"{prog}: error: {message}"
    assert lines[0].startswith(f"usage: {prog} ")


def test_cache_info_json_when_the_cache_is_off(scene):
    result = scene.astpatch("cache", "info", "--json", ASTPATCH_NO_CACHE="1")
    assert result.returncode == 0
    assert json.loads(result.stdout) == {"directory": None, "off": True, "entries": []}
    pruned = json.loads(scene.astpatch("cache", "prune", "--json", ASTPATCH_NO_CACHE="1").stdout)
    assert pruned["directory"] is None and pruned["removed"] == []
    assert scene.astpatch("cache", "info", ASTPATCH_NO_CACHE="1").stdout.strip() == "the cache is off (ASTPATCH_NO_CACHE=1)"


def test_dist_version_must_be_a_version(scene):
    result = scene.astpatch("check", "--dist-version", "banana")
    one_line_error(result, "--dist-version must be a version (PEP 440), such as 2.10.0: 'banana'")
    assert len(result.stderr.strip().splitlines()) == 1
    assert scene.astpatch("check", "--rule", "pickler-valueerror", "--dist-version", "1.5").returncode == 0


def make_venv(path) -> tuple:
    """A virtual environment without pip, as `python -m venv` makes it: (its directory, its site-packages)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, capture_output=True)
    python = path / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    return path, python, type(path)(purelib)


@pytest.fixture
def other_env(tmp_path):
    """A scene whose own environment has neither the target module nor its distribution, and a
    virtual environment that has both (pickledist 1.2 installed in its site-packages)."""
    from conftest import install_dist

    scene = Scenario(tmp_path, source=None, gate="pickledist>=1", rule_dir=True, cwd=tmp_path)
    venv, python, site = make_venv(tmp_path / "venv")
    (site / "pickler.py").write_text(PICKLER_SOURCE)
    install_dist(site, "pickledist", "1.2")
    scene.venv, scene.venv_python, scene.venv_site = venv, python, site  # type: ignore[attr-defined]
    return scene


THIS_PYTHON = ".".join(map(str, sys.version_info[:3]))  # the venv's: made from this interpreter


def pickler_row(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr
    (row,) = [r for r in json.loads(result.stdout) if r["id"] == "pickler-valueerror"]
    return row


def test_new_reads_the_diff_against_another_environment(other_env):
    """`new --from-diff --python` reads the modules the diff changes from that environment, and
    `--fixed-in` bounds the gate on the distribution that installs them there (its top_level.txt):
    the rule equals the one made against the same file given with --source (the oracle), but for
    the distribution named in the gate, which only an environment can tell."""
    import difflib

    from conftest import install_dist

    scene = other_env
    (install_dist(scene.venv_site, "pickledist", "1.2") / "top_level.txt").write_text("pickler\n")
    fixed = PICKLER_SOURCE.replace("(TypeError, AttributeError)", "(TypeError, AttributeError, ValueError)")
    diff = scene.tmp / "fix.diff"
    diff.write_text("".join(difflib.unified_diff(PICKLER_SOURCE.splitlines(keepends=True), fixed.splitlines(keepends=True),
                                                 "a/pickler.py", "b/pickler.py")))
    made = scene.astpatch("new", "--from-diff", str(diff), "--fixed-in", "2.0", "--python", str(scene.venv_python))
    assert made.returncode == 0 and made.stderr == "", made.stderr
    oracle = scene.astpatch("new", "--from-diff", str(diff), "--fixed-in", "2.0", "--source", str(scene.venv_site))
    assert oracle.returncode == 0, oracle.stderr
    assert "gate='pickledist<2.0'" in made.stdout and "gate='pickler<2.0'" in oracle.stdout
    assert made.stdout == oracle.stdout.replace("gate='pickler<2.0'", "gate='pickledist<2.0'")
    missing = scene.astpatch("new", "--from-diff", str(diff))  # astpatch's own environment has no pickler
    assert missing.returncode == 2 and "pickler" in missing.stderr
    one_line_error(scene.astpatch("new", "--from-diff", str(diff), "--python", str(scene.venv_python), "--source",
                                  str(scene.venv_site)),
                   "--python names the environment whose installed modules the diff is read against, --source a "
                   "file or directory to read instead: give one or the other")


def test_python_inspects_another_environment(other_env):
    from conftest import install_dist

    scene = other_env
    # astpatch's own environment lacks the distribution and the module...
    own = pickler_row(scene.astpatch("list", "--json"))
    assert own["outcome"] == "module-missing" and own["version"] is None
    assert own["environment"]["prefix"] == sys.prefix
    # ...which the other environment has, read from its search path (its python is asked, nothing of astpatch runs there).
    for given in (scene.venv_python, scene.venv):
        row = pickler_row(scene.astpatch("list", "--json", "--python", str(given)))
        assert row["outcome"] == "applied" and row["version"] == "1.2", row
        assert row["environment"] == {"prefix": str(scene.venv), "python": str(scene.venv_python), "version": THIS_PYTHON}
    text = scene.astpatch("list", "--python", str(scene.venv_python)).stdout.splitlines()
    assert text[0] == f"environment: {scene.venv} (Python {THIS_PYTHON})"
    assert "pickler-valueerror: would apply" in text
    assert "pickler-valueerror: would apply" not in scene.astpatch("list").stdout
    diff = scene.astpatch("diff", "--python", str(scene.venv_python), "pickler").stdout.splitlines()
    assert diff[:2] == [f"environment: {scene.venv} (Python {THIS_PYTHON})",
                        f"--- {scene.venv_site / 'pickler.py'} (upstream)"]
    assert "+        except (TypeError, AttributeError, ValueError) as e:" in diff
    checked = json.loads(scene.astpatch("check", "--rule", "pickler-valueerror", "--json", "--python",
                                        str(scene.venv_python)).stdout)
    assert checked["environment"]["prefix"] == str(scene.venv)
    # Rules that a distribution of the other environment declares are not imported here: said, not silently missing.
    declaring = install_dist(scene.venv_site, "venvrules", "1.0")
    (declaring / "entry_points.txt").write_text("[astpatch.rules]\nmine = venvrules_module\n")
    result = scene.astpatch("list", "--python", "venv", cwd=scene.tmp)
    assert result.returncode == 0 and result.stdout.startswith(f"environment: {scene.venv} ")
    assert result.stderr.splitlines() == [
        f"astpatch: the rules that venvrules declares in {scene.venv} (an astpatch.rules entry point) are not loaded: "
        f"astpatch imports no code of another environment. Run `{scene.venv_python} -m astpatch` there, or name its "
        "rule files with --rules."]
    assert checked["columns"][0]["label"] == "pickledist 1.2"
    assert checked["columns"][0]["results"]["pickler-valueerror"]["outcome"] == "applied"


def test_the_active_virtual_environment_is_used_and_named(other_env):
    """astpatch installed apart (pipx, uvx) inspects the virtual environment that is active, and says so."""
    scene = other_env
    result = scene.astpatch("list", VIRTUAL_ENV=str(scene.venv))
    assert result.stdout.splitlines()[0] == f"environment: {scene.venv} (Python {THIS_PYTHON})"
    assert "pickler-valueerror: would apply" in result.stdout
    row = pickler_row(scene.astpatch("list", "--json", VIRTUAL_ENV=str(scene.venv)))
    assert row["outcome"] == "applied" and row["environment"]["prefix"] == str(scene.venv)
    # astpatch's own environment active: nothing else to name.
    result = scene.astpatch("list", VIRTUAL_ENV=sys.prefix)
    assert not result.stdout.startswith("environment:") and "pickler-valueerror: target module not installed" in result.stdout
    # `cache warm` compiles for this interpreter: it says that it does not warm the other environment.
    warm = scene.astpatch("cache", "warm", VIRTUAL_ENV=str(scene.venv))
    assert f"not those of the active virtual environment ({scene.venv})" in warm.stderr
    assert "pickler: skipped: pickler is not installed" in warm.stdout


def test_a_bad_python_is_one_line(other_env, tmp_path):
    scene = other_env
    not_python = tmp_path / "not-python"
    not_python.write_text("#!/bin/sh\necho 'hello'\n")
    not_python.chmod(0o755)
    not_executable = tmp_path / "plain.txt"
    not_executable.write_text("")
    for given, message in [
        (tmp_path / "missing", "no such file"),
        (not_executable, "not an executable file"),
        (not_python, "not a Python interpreter (it exited with status 0)"),
        (tmp_path / "site", "a directory without bin/python (not a virtual environment)"),
    ]:
        for command in (["list"], ["diff"], ["check"]):
            one_line_error(scene.astpatch(*command, "--python", str(given)), f"--python {given}: {message}")
    one_line_error(scene.astpatch("list", VIRTUAL_ENV=str(tmp_path / "site")),
                   f"VIRTUAL_ENV={tmp_path / 'site'} is not a virtual environment (it has no bin/python): "
                   "deactivate it, or name an interpreter with --python")
    one_line_error(scene.astpatch("check", "--python", str(scene.venv_python), "--against", str(scene.venv_site)),
                   "--python names the environment to check when no --against is given: give one or the other")


def test_cache_warm_clear_and_dir_json(scene):
    assert json.loads(scene.astpatch("cache", "dir", "--json").stdout) == {"directory": str(scene.cache), "off": False}
    warm = scene.astpatch("cache", "warm", "--json")
    assert warm.returncode == 0, warm.stderr
    data = json.loads(warm.stdout)
    assert data["directory"] == str(scene.cache) and data["stored"] is True
    assert data["environment"]["prefix"] == sys.prefix
    (pickler,) = [m for m in data["modules"] if m["module"] == "pickler"]
    assert pickler["path"] == str(scene.module) and pickler["skipped"] is None
    assert [(o["rule"], o["outcome"], o["from_cache"]) for o in pickler["outcomes"]] == [
        ("pickler-valueerror", "applied", False)]
    assert all(m["skipped"] for m in data["modules"] if m["module"].startswith("torch."))  # not installed here
    again = json.loads(scene.astpatch("cache", "warm", "--json").stdout)
    assert [o["from_cache"] for m in again["modules"] if m["module"] == "pickler" for o in m["outcomes"]] == [True]
    (entry,) = scene.entries()
    size = entry.stat().st_size
    cleared = scene.astpatch("cache", "clear", "--json")
    assert cleared.returncode == 0
    assert json.loads(cleared.stdout) == {"directory": str(scene.cache), "off": False,
                                          "removed": [{"file": entry.name, "size": size}], "failed": []}
    assert scene.entries() == []
    for command in (["warm"], ["clear"], ["dir"]):
        off = json.loads(scene.astpatch("cache", *command, "--json", ASTPATCH_NO_CACHE="1").stdout)
        assert off["directory"] is None and off["off"] is True, command
