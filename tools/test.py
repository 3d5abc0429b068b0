"""Run the whole test suite, installing what it needs.

    python3 tools/test.py                       # every tier
    python3 tools/test.py --tier engine-3.12    # one tier
    python3 tools/test.py -- -k cache           # extra pytest arguments for every tier

Tiers:
- engine-3.10 ... engine-3.13: the tests that need no torch, under each CPython (code objects
  and line tables differ between versions); engine-3.11 also runs tests/test_packaging.py (marker
  `packaging`: builds and installs astpatch in fresh environments, needed once);
- torch210 (slow): real torch 2.10.0, the release with the bug, including torch.compile;
- torch213 (slow): real torch 2.13.0, where upstream has the fix;
- wheels (slow the first time: downloads): the shipped rules, and rules made from three upstream
  pull requests, against the released torch wheels around each upstream fix (2.9.0 to 2.13.0),
  read from the wheel files;
- lint: ruff and mypy (configured in pyproject.toml);
- benchmark: `benchmarks/run.py --quick`, which proves the benchmark still works (its figures
  are not checked: speed is judged from a full run, never by assertions).

Each tier runs in its own virtual environment under .venvs/, created on first use and reused
(see tools/venvs.py), with astpatch installed into it as users get it (the wheel built from the
checkout's sdist), and
pytest started outside the checkout, so the tests exercise astpatch as users install it. (Plain
`pytest` in the checkout runs the engine tests on the checkout, under the interpreter at hand.)
A selected test that does not run (skipped, xfailed or xpassed) is a failure of its tier; tests
that need a newer Python are deselected on older ones instead (tests/conftest.py).
An interpreter that is missing is reported as such; `--require-all-pythons` (used by CI) makes
that a failure.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import venvs  # noqa: E402

ENGINE_MARKS = "not torch210 and not torch213 and not wheels"
# tests/test_packaging.py builds and installs astpatch itself: once per run is enough.
ONCE_MARKS = ENGINE_MARKS + " and not packaging"
# The releases around the first rule's upstream fix, and around the three upstream changes of
# tests/test_released_changes.py, read from their wheels without installing.
RELEASED_TORCH = ["torch==2.9.0", "torch==2.9.1", "torch==2.10.0", "torch==2.11.0", "torch==2.12.0", "torch==2.13.0"]
TIERS = {
    "engine-3.10": ("engine", "3.10", ONCE_MARKS),
    "engine-3.11": ("engine", "3.11", ENGINE_MARKS),
    "engine-3.12": ("engine", "3.12", ONCE_MARKS),
    "engine-3.13": ("engine", "3.13", ONCE_MARKS),
    "torch210": ("torch210", "3.11", "torch210"),
    "torch213": ("torch213", "3.11", "torch213"),
    "wheels": ("engine", "3.11", "wheels"),
    "lint": ("engine", "3.11", ""),
    "benchmark": ("torch210", "3.11", ""),
}


# The words of pytest's closing line ("== 1 failed, 40 passed, 2 skipped, 3 deselected in 9.1s ==").
OUTCOME_WORDS = ("passed", "failed", "errors", "error", "skipped", "xfailed", "xpassed", "deselected")
# Tests that were collected and selected but did not simply pass or fail: each counts as a failure
# of the tier (a deselected test, by -m or by conftest.py's version markers, is not one of them).
NOT_RUN = ("skipped", "xfailed", "xpassed")


def closing_counts(output: str) -> dict[str, int]:
    """The counts of pytest's closing line (the last line with "N <outcome>" and "in N.NNs"), by word."""
    pattern = re.compile(rf"(\d+) ({'|'.join(OUTCOME_WORDS)})\b")
    for line in reversed(output.splitlines()):
        if re.search(r"\bin \d+(\.\d+)?s\b", line) and (found := pattern.findall(line)):
            totals: dict[str, int] = {}
            for number, word in found:
                word = "error" if word == "errors" else word
                totals[word] = totals.get(word, 0) + int(number)
            return totals
    return {}


def counts(output: str, name: str = "") -> tuple[int, int]:
    """(passed, failed + errors + tests that did not run) from pytest's closing line; says which did not run."""
    totals = closing_counts(output)
    not_run = {word: totals[word] for word in NOT_RUN if totals.get(word)}
    if not_run:
        what = ", ".join(f"{n} {word}" for word, n in not_run.items())
        print(f"[{name}] {what}: {sum(not_run.values())} selected test(s) did not simply pass or fail, "
              "counted as failures of this tier", flush=True)
    return totals.get("passed", 0), totals.get("failed", 0) + totals.get("error", 0) + sum(not_run.values())


def run_tool(name: str, python: str, started: float) -> tuple[str, int, int, float]:
    """The tiers that are not pytest: ruff and mypy; the benchmark's quick mode."""
    log = lambda m: print(f"[{name}] {m}", flush=True)  # noqa: E731
    if name == "lint":
        venv = venvs.ensure("engine", python, log=log)
        bin_dir = venvs.bin_python(venv).parent
        commands = [[str(bin_dir / "ruff"), "check", "."], [str(bin_dir / "mypy")]]
    else:
        commands = [[sys.executable, str(venvs.ROOT / "benchmarks" / "run.py"), "--quick"]]
    passed = failed = 0
    for command in commands:
        log(" ".join(Path(c).name if i == 0 else c for i, c in enumerate(command)))
        result = subprocess.run(command, cwd=str(venvs.ROOT))
        passed, failed = (passed + 1, failed) if result.returncode == 0 else (passed, failed + 1)
    return ("ok" if failed == 0 else "failed"), passed, failed, time.monotonic() - started


def run_tier(name: str, extra: list[str]) -> tuple[str, int, int, float]:
    requirements, version, marks = TIERS[name]
    python = venvs.find_python(version)
    if python is None:
        print(f"[{name}] NOT RUN: no CPython {version} found (PATH or pyenv)", flush=True)
        return "missing", 0, 0, 0.0
    started = time.monotonic()
    if name in ("lint", "benchmark"):
        return run_tool(name, python, started)
    env = dict(os.environ)
    if name == "engine-3.11":
        env["ASTPATCH_FAULT_MATRIX"] = str(venvs.VENV_DIR / "fault-matrix.md")
    if name == "wheels":
        env["ASTPATCH_TEST_WHEELS"] = str(venvs.fetch_wheels(RELEASED_TORCH, log=lambda m: print(f"[{name}] {m}", flush=True)))
    venv = venvs.ensure(requirements, python, log=lambda m: print(f"[{name}] {m}", flush=True))
    venvs.install_project(venv, log=lambda m: print(f"[{name}] {m}", flush=True))
    # `-m` overrides pyproject.toml's addopts (the engine tests); `-o pythonpath=` takes the checkout
    # off sys.path (plain `pytest` in a checkout puts it there).
    command = [str(venvs.bin_python(venv)), "-m", "pytest", "-p", "no:cacheprovider",
               "--rootdir", str(venvs.ROOT), "-c", str(venvs.ROOT / "pyproject.toml"), "-o", "pythonpath=",
               "-m", marks, str(venvs.ROOT / "tests"), *extra]
    print(f"[{name}] pytest -m '{marks}'", flush=True)
    # Run from inside the venv directory, not the checkout, so `import astpatch` (in pytest and
    # in the subprocesses the tests start) finds the installed copy.
    env.pop("PYTHONPATH", None)
    result = subprocess.run(command, cwd=str(venv), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sys.stdout.write(result.stdout)
    passed, failed = counts(result.stdout, name)
    status = "ok" if result.returncode == 0 and passed > 0 and failed == 0 else "failed"
    if result.returncode == 0 and passed == 0 and failed == 0:
        print(f"[{name}] no test ran: counted as a failure", flush=True)
        failed += 1
    return status, passed, failed, time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tier", action="append", choices=sorted(TIERS), help="run only this tier (repeatable)")
    parser.add_argument("--require-all-pythons", action="store_true",
                        help="fail when an interpreter for an engine tier is missing")
    parser.add_argument("pytest_args", nargs="*", help="extra arguments for pytest (after --)")
    args = parser.parse_args()
    results = {name: run_tier(name, args.pytest_args) for name in (args.tier or TIERS)}

    print("\nsummary:")
    total_passed = total_failed = 0
    for name, (status, passed, failed, seconds) in results.items():
        print(f"  {name:<12} {status:<8} {passed:>4} passed {failed:>3} failed  {seconds:6.1f} s")
        total_passed += passed
        total_failed += failed
        if status == "missing" and args.require_all_pythons:
            total_failed += 1
    matrix = venvs.VENV_DIR / "fault-matrix.md"
    if "engine-3.11" in results and matrix.exists():
        print(f"\nfault matrix (tests/test_faults_*.py, engine-3.11), also in {matrix}:")
        print(matrix.read_text())
    ok = total_failed == 0 and all(s in ("ok", "missing") for s, *_ in results.values())
    print(f"total: {total_passed} passed, {total_failed} failed")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
