"""The astpatch command line, run for real in subprocesses, on sources the tests write."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import zipfile

import pytest

from conftest import PICKLER_SOURCE, RULE_FILE, clean_env, install_dist

GATED_RULE = RULE_FILE.replace("upstream=", 'gate="pickledist>=1",\n    upstream=')
FIXED_SOURCE = PICKLER_SOURCE.replace("(TypeError, AttributeError)", "(TypeError, AttributeError, ValueError)")


class Env:
    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.site = tmp_path / "site"
        self.site.mkdir()
        (self.site / "pickler.py").write_text(PICKLER_SOURCE)
        install_dist(self.site, "pickledist", "1.2")
        self.rules = tmp_path / "rules"
        self.rules.mkdir()
        (self.rules / "pickler_rule.py").write_text(GATED_RULE)
        self.cache = tmp_path / "cache"

    def run(self, *args: str, extra_env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
        env = clean_env(site=self.site, ASTPATCH_RULES=str(self.rules), ASTPATCH_CACHE_DIR=str(self.cache),
                        **(extra_env or {}))
        return subprocess.run([sys.executable, "-m", "astpatch", *args], capture_output=True, text=True, env=env,
                              cwd=cwd or self.tmp, timeout=300)


@pytest.fixture
def env(tmp_path):
    return Env(tmp_path)


def known_ids() -> str:
    from astpatch._rules.rulefiles import builtin_rules_dir
    from astpatch._rules.ruleset import load_rules

    return ", ".join(sorted([r.id for r in load_rules([builtin_rules_dir()], print)] + ["pickler-valueerror"]))


def one_line_error(result: subprocess.CompletedProcess, text: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == f"astpatch: error: {text}"


def test_help_on_every_command(env):
    for command in ([], ["list"], ["diff"], ["check"], ["run"], ["new"], ["cache"], ["cache", "warm"]):
        result = env.run(*command, "--help")
        assert result.returncode == 0 and "usage: astpatch" in result.stdout, command


def test_list(env):
    result = env.run("list", "--json")
    assert result.returncode == 0, result.stderr
    (row,) = [r for r in json.loads(result.stdout) if r["id"] == "pickler-valueerror"]
    assert row["outcome"] == "applied" and row["version"] == "1.2" and row["gate"] == "pickledist>=1"
    text = env.run("list").stdout
    assert "pickler-valueerror: would apply" in text and "target:   pickler:Pickler.dumps" in text


def test_list_states(env):
    (env.site / "pickler.py").write_text(FIXED_SOURCE)
    assert "pickler-valueerror: already fixed upstream" in env.run("list").stdout
    (env.site / "pickler.py").write_text(PICKLER_SOURCE.replace("def dumps", "def dump"))
    result = env.run("list")
    assert result.returncode == 1 and "pickler-valueerror: target missing" in result.stdout
    (env.site / "pickler.py").unlink()
    result = env.run("list")
    assert result.returncode == 0 and "pickler-valueerror: target module not installed" in result.stdout


def test_diff_plain_stat_and_json(env):
    result = env.run("diff", "pickler-valueerror")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0] == f"--- {env.site / 'pickler.py'} (upstream)"
    assert "-        except (TypeError, AttributeError) as e:" in lines
    assert "+        except (TypeError, AttributeError, ValueError) as e:" in lines
    assert "\033[" not in result.stdout  # not a terminal: no colour
    assert "\033[32m+" in env.run("diff", "--color=always").stdout
    assert env.run("diff", "--stat").stdout.splitlines()[0].startswith("pickler: +1 -1 ")
    (entry,) = json.loads(env.run("diff", "--json", "pickler").stdout)
    assert entry["rules"] == ["pickler-valueerror"] and entry["added"] == 1


def test_diff_is_computed_afresh_not_from_the_cache(env):
    env.run("cache", "warm")
    (env.site / "pickler.py").write_text(FIXED_SOURCE)
    assert env.run("diff").stdout == ""


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


def test_check_matrix_across_kinds_of_sources(env):
    old = env.tmp / "pickledist-0.9-py3-none-any.whl"
    build_wheel(old, "0.9", PICKLER_SOURCE)
    buggy = env.tmp / "pickledist-1.0-py3-none-any.whl"
    build_wheel(buggy, "1.0", PICKLER_SOURCE)
    fixed = env.tmp / "pickledist-2.0.tar.gz"
    build_sdist(fixed, "2.0", FIXED_SOURCE)
    single = env.tmp / "pickler_copy.py"
    single.write_text(PICKLER_SOURCE)
    result = env.run("check", "--rule", "pickler-valueerror", "--against", str(old), "--against", str(buggy),
                     "--against", str(fixed), "--against", str(env.site), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [c["label"] for c in data["columns"]] == ["pickledist 0.9", "pickledist 1.0", "pickledist 2.0", "pickledist 1.2"]
    assert [c["results"]["pickler-valueerror"]["outcome"] for c in data["columns"]] == [
        "not-applicable", "applied", "already-fixed", "applied"]
    text = env.run("check", "--rule", "pickler-valueerror", "--against", str(old), "--against", str(buggy)).stdout
    assert text.splitlines()[1].split() == ["pickler-valueerror", "not-applicable", "applied"]
    # A single file has no metadata: the version comes from --dist-version.
    result = env.run("check", "--rule", "pickler-valueerror", "--against", str(single), "--dist-version", "1.5", "--json")
    assert json.loads(result.stdout)["columns"][0]["results"]["pickler-valueerror"]["outcome"] == "applied"


def test_check_finds_a_stale_rule(env):
    moved = env.tmp / "pickledist-3.0-py3-none-any.whl"
    build_wheel(moved, "3.0", PICKLER_SOURCE.replace("raise Bypass", "return None  #"))
    result = env.run("check", "--rule", "pickler-valueerror", "--against", str(moved))
    assert result.returncode == 1
    assert "pickler-valueerror @ pickledist 3.0: failed: the edit does not apply: no except clause" in result.stdout
    assert "1 stale" in result.stdout


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_bytes(os.urandom(2000)), "is not a readable wheel: File is not a zip file"),
    (lambda p: p.write_bytes(b""), "is not a readable wheel: File is not a zip file"),
])
def test_check_a_corrupt_wheel(env, make, message):
    wheel = env.tmp / "broken-1.0-py3-none-any.whl"
    make(wheel)
    one_line_error(env.run("check", "--against", str(wheel)), f"{wheel} {message}")


def test_check_malformed_input(env):
    missing = env.tmp / "nowhere.whl"
    one_line_error(env.run("check", "--against", str(missing)), f"{missing} does not exist")
    one_line_error(env.run("check", "--rule", "no-such-rule"),
                   f"no rule has the id or module 'no-such-rule' (known rule ids: {known_ids()})")
    other = env.tmp / "notes.txt"
    other.write_text("hello")
    one_line_error(env.run("check", "--against", str(other)),
                   f"{other} is not a wheel (.whl), an sdist (.tar.gz), a directory or a .py file")
    one_line_error(env.run("diff", "nothing-like-this"),
                   f"no rule has the id or module 'nothing-like-this' (known rule ids: {known_ids()})")
    result = env.run("frobnicate")
    assert result.returncode == 2 and "invalid choice: 'frobnicate'" in result.stderr and "Traceback" not in result.stderr


def test_a_broken_rule_file_is_reported_and_the_others_still_work(env):
    (env.rules / "broken.py").write_text("RULES = [1]\n")
    result = env.run("list", "--json")
    assert result.returncode == 0
    assert f"rule file {env.rules / 'broken.py'}: 1 is not an astpatch.Rule. The other rules still apply." in result.stderr
    assert "pickler-valueerror" in [r["id"] for r in json.loads(result.stdout)]


def test_rules_option(env, tmp_path):
    extra = tmp_path / "extra.py"
    extra.write_text(RULE_FILE.replace("pickler-valueerror", "pickler-keyerror").replace('"ValueError"', '"KeyError"'))
    data = json.loads(env.run("list", "--json", "--rules", str(extra)).stdout)
    assert {"pickler-valueerror", "pickler-keyerror"} <= {r["id"] for r in data}
    one_line_error(env.run("list", "--rules", str(tmp_path / "none.py")), f"rule path {tmp_path / 'none.py'} does not exist")


PROGRAM = '''
import sys
import pickler
print("patched" if "ValueError" in pickler.Pickler.dumps.__code__.co_names else "upstream", sys.argv[1:])
'''


def test_run_a_script_a_module_and_code(env):
    script = env.tmp / "prog.py"
    script.write_text(PROGRAM)
    result = env.run("run", "--", str(script), "a", "b")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "patched ['a', 'b']"
    (env.site / "progmod.py").write_text(PROGRAM)
    assert env.run("run", "--", "-m", "progmod", "x").stdout.strip() == "patched ['x']"
    code = "import pickler, sys; print('ValueError' in pickler.Pickler.dumps.__code__.co_names, sys.argv)"
    assert env.run("run", "--", "-c", code, "z").stdout.strip() == "True ['-c', 'z']"


def test_run_selected_rules_strict_and_exit_status(env):
    script = env.tmp / "prog.py"
    script.write_text(PROGRAM + "raise SystemExit(3)\n")
    result = env.run("run", "--rule", "torch-fxgraph-cache-key-valueerror", "--", str(script))
    assert result.returncode == 3 and result.stdout.split()[0] == "upstream"
    (env.site / "pickler.py").write_text(PICKLER_SOURCE.replace("def dumps", "def dump"))
    strict = env.run("run", "--strict", "--", str(script))
    assert strict.returncode == 1 and "AstpatchError" in strict.stderr
    one_line_error(env.run("run"), "nothing to run: give `-- script.py [args]`, `-- -m module [args]` or `-- -c code [args]`")
    one_line_error(env.run("run", "--", str(env.tmp / "missing.py")), f"can't open file {str(env.tmp / 'missing.py')!r}: no such file")


def test_cache_dir_info_warm_clear(env):
    assert env.run("cache", "dir").stdout.strip() == str(env.cache)
    warm = env.run("cache", "warm")
    assert warm.returncode == 0, warm.stderr
    assert "pickler: pickler-valueerror: applied" in warm.stdout
    # The shipped rules' target is not installed in the engine environments: named once, as skipped.
    torch_lines = [line for line in warm.stdout.splitlines() if line.startswith("torch.")]
    assert torch_lines == ["torch._inductor.codecache: skipped: torch is not installed (not found on sys.path)"]
    info = json.loads(env.run("cache", "info", "--json").stdout)
    (entry,) = [e for e in info["entries"] if e.get("module") == "pickler"]
    assert entry["outcomes"] == [{"rule": "pickler-valueerror", "outcome": "applied"}]
    # The warmed entry is what a process uses: no libcst import.
    probe = "import sys, pickler; print('libcst' in sys.modules, 'ValueError' in pickler.Pickler.dumps.__code__.co_names)"
    assert env.run("run", "--", "-c", probe).stdout.split() == ["False", "True"]
    assert env.run("cache", "clear").stdout.startswith("removed ")
    assert json.loads(env.run("cache", "info", "--json").stdout)["entries"] == []
    assert env.run("cache", "dir", extra_env={"ASTPATCH_NO_CACHE": "1"}).stdout.strip() == "off"


def pickler_diff(env) -> str:
    """Upstream's fix of the test module, as a unified diff file."""
    import difflib

    diff = env.tmp / "fix.diff"
    diff.write_text("".join(difflib.unified_diff(PICKLER_SOURCE.splitlines(True), FIXED_SOURCE.splitlines(True),
                                                 "a/pickler.py", "b/pickler.py")))
    return str(diff)


@pytest.mark.parametrize("where, problem", [
    ("under a regular file", "Not a directory"),
    ("a regular file", "File exists"),
])
def test_new_into_a_directory_that_cannot_be_written(env, where, problem):
    blocker = env.tmp / "blocker"
    blocker.write_text("not a directory")
    output = blocker / "rules" if where == "under a regular file" else blocker
    result = env.run("new", "--from-diff", pickler_diff(env), "--id", "pickler-fix", "-o", str(output))
    path = output / "pickler_fix.py"
    one_line_error(result, f"cannot write {path}: {problem}")
    assert result.stdout == ""
    # The same command with a usable directory writes the rule file: only the directory was wrong.
    made = env.run("new", "--from-diff", pickler_diff(env), "--id", "pickler-fix", "-o", str(env.tmp / "out"))
    assert made.returncode == 0 and (env.tmp / "out" / "pickler_fix.py").is_file(), made.stderr


@pytest.mark.parametrize("where", ["under a regular file", "read-only"])
def test_cache_warm_into_a_directory_that_cannot_be_written(env, where):
    blocker = env.tmp / "blocker"
    blocker.write_text("not a directory")
    cache = blocker / "cache" if where == "under a regular file" else env.cache
    command = [sys.executable, "-m", "astpatch", "cache", "warm"]
    if where == "read-only":
        # A read-only mount in a private mount namespace: unwritable even for root.
        cache.mkdir(mode=0o700)
        command = ["unshare", "-rm", "sh", "-c", f"mount -o bind,ro '{cache}' '{cache}' && exec \"$@\"", "sh", *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=env.tmp,
                            env=clean_env(site=env.site, ASTPATCH_RULES=str(env.rules), ASTPATCH_CACHE_DIR=str(cache)))
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert "pickler: pickler-valueerror: applied" in result.stdout.splitlines()
    warning, summary = result.stderr.splitlines()
    assert warning.startswith(f"astpatch: cannot {'use' if where == 'under a regular file' else 'write to'} the cache "
                              f"directory {cache} (") and "patched without caching" in warning
    assert summary == f"astpatch: nothing could be stored in {cache} (see the warning above)"
    if where == "read-only":
        assert list(cache.iterdir()) == []
