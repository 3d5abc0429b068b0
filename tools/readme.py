"""The README's example outputs, made by running the examples.

    python3 tools/readme.py                    # run every example, rewrite its block (and the rule catalogue)
    python3 tools/readme.py --check            # exit 1, printing a diff, if README.md is not what the runs give
    python3 tools/readme.py --env torch210     # only the examples of that environment (repeatable)
    python3 tools/readme.py --env pkgfix --python PATH   # with that interpreter as it is (what the tests do)

Marks. An example is a fenced block preceded by a comment that names its environment and its
commands, one a line; a command written `$ COMMAND` is shown in the block before its output, any
other runs without being shown (a setup step, or a program whose output the prose introduces):

    <!-- example torch210:
    $ astpatch cache warm
    $ astpatch cache info
    -->

A command that exits with another status than 0 ends with a shell comment `# exits N`; any other
status fails the run (a broken environment never makes its way into the README). A block preceded
by `<!-- example file: NAME -->` is not generated: its text is written to NAME in the directory of
every example's run (the Quick start's program, say).

Environments. Each example runs with `sh -c` in a new empty directory, with a new empty home (so
the default cache directory starts empty), the environment's interpreter first on PATH (`python`,
and its `astpatch` and `pytest`), no ASTPATCH_* settings, output unbuffered, 80 columns, and
`$CHECKOUT` naming this checkout. The interpreter is a virtual environment made by tools/venvs.py
(as tools/test.py makes them, this checkout installed), or the one `--python` gives, which should
have astpatch installed too: a checkout on PYTHONPATH also puts its `tests` package on sys.path.
- torch210: torch 2.10.0 (tests/requirements/torch210.txt). torch warns at import when NumPy is
  not installed, as in that environment: the runs ignore that one warning.
- wheels: no torch; the released torch wheels (ASTPATCH_TEST_WHEELS, or downloaded as the wheels
  tier does) are linked into the run's directory.
- pkgfix: no torch; the project of `astpatch new --from-diff`'s example: a distribution pkgfix 1.0
  installed in `site/` (on PYTHONPATH), its release 0.9 as an sdist, and upstream's fix in fix.diff.

Normalisation (one place, `normalise`): what differs between runs and machines is replaced. The
run's home becomes `~` and its directory `.`; the interpreter's site-packages directory
`.../site-packages`; the cache's key digests in file names, byte counts other than 0, memory
addresses (`0x...`), pytest's durations and its platform line (the machine and versions), and
astpatch's own version, `...`; pytest's `=` rulers are centred again, as pytest centres them.
"""

from __future__ import annotations

import argparse
import difflib
import io
import json
import os
import re
import shlex
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import venvs  # noqa: E402

ROOT = venvs.ROOT
README = ROOT / "README.md"
MARK = "<!-- example "
EXAMPLE = re.compile(rf"^{MARK}(?!file:)(?P<env>[\w-]+):(?P<commands>(?:(?!-->).)*)-->\n```[^\n]*\n(?P<body>.*?)^```$",
                     re.MULTILINE | re.DOTALL)
FILE = re.compile(rf"^{MARK}file: (?P<name>\S+) -->\n```[^\n]*\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)
EXITS = re.compile(r"\s+# exits (\d+)$")
TIMEOUT = 900


@dataclass
class Command:
    text: str  # as run and shown (with its `# exits N` comment)
    shown: bool
    status: int


@dataclass
class Example:
    env: str
    commands: list[Command]
    start: int  # of the block's body in the README
    end: int

    @property
    def title(self) -> str:
        return f"{self.env}: {'; '.join(c.text for c in self.commands)}"


def examples(readme: str) -> list[Example]:
    found = []
    for match in EXAMPLE.finditer(readme):
        commands = []
        for line in filter(None, (line.strip() for line in match["commands"].splitlines())):
            shown = line.startswith("$ ")
            text = line[2:] if shown else line
            status = EXITS.search(text)
            commands.append(Command(text, shown, int(status[1]) if status else 0))
        found.append(Example(match["env"], commands, match.start("body"), match.end("body")))
    if len(re.findall(rf"^{MARK}", readme, re.MULTILINE)) != len(found) + len(files(readme)):
        raise SystemExit(f"README.md: a mark `{MARK}...-->` is not directly followed by a fenced block")
    return found


def files(readme: str) -> dict[str, str]:
    return {match["name"]: match["body"] for match in FILE.finditer(readme)}


# The environments' setups: each prepares the run's directory and returns settings to add.

def link_wheels(run: Path) -> dict[str, str]:
    wheels = os.environ.get("ASTPATCH_TEST_WHEELS")
    where = Path(wheels) if wheels else venvs.fetch_wheels(
        ["torch==2.9.1", "torch==2.10.0", "torch==2.11.0", "torch==2.13.0"])
    for wheel in sorted(where.glob("*.whl")):
        (run / wheel.name).symlink_to(wheel)
    return {}


PKGFIX_UPSTREAM = (ROOT / "tests" / "data" / "upstream_parser.txt").read_text()  # the tests' upstream module
PKGFIX_FIXED = (PKGFIX_UPSTREAM.replace("text.strip()\n", "text.strip().replace('_', '')\n")
                .replace("int(text)\n", "int(text, 0)\n").replace("x * 2\n", "x * 2 if x is not None else None\n"))
# The installed release, 1.0: its lines have drifted from upstream's. Release 0.9, an sdist in the
# project's directory, had one comment of Parser.parse worded otherwise.
PKGFIX_INSTALLED = "# A release with more at the top.\nimport os\n\n\nVERSION = '1.0'\n" + PKGFIX_UPSTREAM
PKGFIX_OLD = PKGFIX_INSTALLED.replace("'1.0'", "'0.9'").replace("# step four", "# step 4")
PKGFIX_TEST = "from pkgfix.core import Parser\n\n\ndef test_parse():\n    assert Parser().parse('12') == 12\n"


def metadata(version: str) -> str:
    return f"Metadata-Version: 2.1\nName: pkgfix\nVersion: {version}\n\n"


def pkgfix_project(run: Path) -> dict[str, str]:
    def diff(path: str, before: str, after: str) -> str:
        return "".join(difflib.unified_diff(before.splitlines(True), after.splitlines(True), f"a/{path}", f"b/{path}"))

    site = run / "site"
    (site / "pkgfix").mkdir(parents=True)
    (site / "pkgfix" / "__init__.py").write_text("")
    (site / "pkgfix" / "core.py").write_text(PKGFIX_INSTALLED)
    (site / "pkgfix-1.0.dist-info").mkdir()
    (site / "pkgfix-1.0.dist-info" / "METADATA").write_text(metadata("1.0"))
    with tarfile.open(run / "pkgfix-0.9.tar.gz", "w:gz") as sdist:
        for name, text in [("PKG-INFO", metadata("0.9")), ("pkgfix/__init__.py", ""), ("pkgfix/core.py", PKGFIX_OLD)]:
            member = tarfile.TarInfo(f"pkgfix-0.9/{name}")
            member.size = len(text.encode())
            sdist.addfile(member, io.BytesIO(text.encode()))
    (run / "fix.diff").write_text(diff("pkgfix/core.py", PKGFIX_UPSTREAM, PKGFIX_FIXED) + diff(
        "tests/test_core.py", PKGFIX_TEST, PKGFIX_TEST.replace("'12') == 12", "'0x_12') == 18")))
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH", "")]))}


# name: (requirements file in tests/requirements, Python version, setup of each run's directory)
ENVIRONMENTS: dict[str, tuple[str, str, Callable[[Path], dict[str, str]] | None]] = {
    "torch210": ("torch210", "3.11", None),
    "wheels": ("engine", "3.11", link_wheels),
    "pkgfix": ("engine", "3.11", pkgfix_project),
}


class Interpreter:
    """The Python an environment's examples run with, and what normalising its output needs to know."""

    def __init__(self, python: str):
        self.python = python
        probe = ("import json, sys, sysconfig, astpatch; paths = sysconfig.get_paths(); print(json.dumps({'sites': "
                 "sorted({paths['purelib'], paths['platlib'], *(p for p in sys.path if p.endswith('site-packages'))}), "
                 "'version': astpatch.__version__}))")
        found = json.loads(subprocess.run([python, "-c", probe], check=True, capture_output=True, text=True,
                                          env=run_environment({})).stdout)
        self.sites: list[str] = found["sites"]
        self.version: str = found["version"]


def run_environment(extra: dict[str, str], home: Path | None = None) -> dict[str, str]:
    """The settings of every run: the caller's, without anything that would change the output."""
    drop = ("ASTPATCH_", "PYTEST_", "FORCE_COLOR", "NO_COLOR", "PY_COLORS", "XDG_CACHE_HOME", "PYTHONWARNINGS")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    if home is not None:
        env["HOME"] = str(home)
    env.update({"PYTHONUNBUFFERED": "1", "COLUMNS": "80", "CHECKOUT": str(ROOT),
                "PYTHONWARNINGS": "ignore:Failed to initialize NumPy"}, **extra)
    return env


def shims(bin_dir: Path, python: str) -> None:
    """`python` and `python3` are the environment's; so are `astpatch` and `pytest`, run from its
    own scripts when it has them (a venv does), else as modules."""
    bin_dir.mkdir()
    scripts = Path(python).parent
    for name, how in [("python", ""), ("python3", ""), ("astpatch", "-m astpatch "), ("pytest", "-m pytest ")]:
        if how and (scripts / name).exists():
            continue
        shim = bin_dir / name
        shim.write_text(f'#!/bin/sh\nexec {shlex.quote(python)} {how}"$@"\n')
        shim.chmod(0o755)


def run_example(example: Example, interpreter: Interpreter, written: dict[str, str]) -> str:
    """The block's new text: each command's normalised output, after the command when it is shown."""
    setup = ENVIRONMENTS[example.env][2]
    with tempfile.TemporaryDirectory(prefix="astpatch-readme-") as tmp:
        base = Path(tmp).resolve()
        run, home = base / "run", base / "home"
        run.mkdir()
        home.mkdir()
        shims(base / "bin", interpreter.python)
        for name, text in written.items():
            (run / name).write_text(text)
        extra = setup(run) if setup else {}
        path = os.pathsep.join([str(base / "bin"), str(Path(interpreter.python).parent), os.environ.get("PATH", "")])
        env = run_environment({**extra, "PATH": path}, home)
        block = []
        for command in example.commands:
            result = subprocess.run(["sh", "-c", command.text], cwd=run, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT)
            if result.returncode != command.status:
                raise SystemExit(f"README example ({example.title}): `{command.text}` exited {result.returncode}, "
                                 f"not {command.status}:\n{result.stdout}")
            output = normalise(result.stdout, run, home, interpreter)
            block.append((f"$ {command.text}\n" if command.shown else "") + output)
    return "".join(block)


def normalise(text: str, run: Path, home: Path, interpreter: Interpreter) -> str:
    """What differs between runs and machines, replaced (the module's docstring lists it)."""
    for site in sorted(interpreter.sites, key=len, reverse=True):
        text = text.replace(site, ".../site-packages")
    text = text.replace(str(home), "~").replace(f"{run}{os.sep}", "").replace(str(run), ".")
    text = re.sub(rf"\bastpatch([- ]){re.escape(interpreter.version)}\b", r"astpatch\1...", text)
    text = re.sub(r"-[0-9a-f]{16}\.(astpatch|index)\b", r"-....\1", text)
    text = re.sub(r"\b[1-9]\d* bytes\b", "... bytes", text)
    text = re.sub(r"\b0x[0-9a-f]{6,}\b", "0x...", text)
    text = re.sub(r"^platform .*$", "platform ...", text, flags=re.MULTILINE)
    text = re.sub(r"\bin \d+(\.\d+)?s( \(\d+:\d\d:\d\d\))?", "in ...s", text)
    return "".join(f"{ruler(line)}\n" for line in text.splitlines())


def ruler(line: str) -> str:
    """A pytest section line (`==== title ====`) centred in 80 columns, as pytest centres it."""
    match = re.fullmatch(r"=+ (.+?) =+", line)
    if not match:
        return line
    fill = "=" * max((80 - len(match[1]) - 2) // 2, 1)
    centred = f"{fill} {match[1]} {fill}"
    return centred + "=" if len(centred) < 80 else centred


def regenerate(readme: str, envs: list[str], interpreters: dict[str, Interpreter], log=print) -> str:
    """The README with the examples of `envs` made again by running them."""
    written = files(readme)
    pieces, position = [], 0
    for example in examples(readme):
        if example.env not in ENVIRONMENTS:
            raise SystemExit(f"README example ({example.title}): unknown environment; known: {', '.join(ENVIRONMENTS)}")
        if example.env not in envs:
            continue
        started = time.monotonic()
        pieces += [readme[position:example.start], run_example(example, interpreters[example.env], written)]
        log(f"[readme] {time.monotonic() - started:5.1f} s  {example.title}")
        position = example.end
    return "".join(pieces) + readme[position:]


def interpreters_for(envs: list[str], python: str | None, log=print) -> dict[str, Interpreter]:
    """Each environment's interpreter: `python` as it is, or a venv of tools/venvs.py with this checkout installed."""
    if python:
        shared = Interpreter(python)
        return {env: shared for env in envs}
    os.environ.pop("PYTHONPATH", None)  # the venv's installed astpatch, as tools/test.py runs it
    made: dict[tuple[str, str], Interpreter] = {}
    for env in envs:
        requirements, version, _ = ENVIRONMENTS[env]
        if (requirements, version) not in made:
            base = venvs.find_python(version)
            if base is None:
                raise SystemExit(f"no CPython {version} found (PATH or pyenv) for the README's {env} examples")
            venv = venvs.ensure(requirements, base, log=log)
            venvs.install_project(venv, log=log)
            made[requirements, version] = Interpreter(str(venvs.bin_python(venv)))
    return {env: made[ENVIRONMENTS[env][0], ENVIRONMENTS[env][1]] for env in envs}


def update(path: Path, current: str, updated: str, check: bool, command: str) -> int:
    """Write `updated`; with `check`, print how it differs from `current` instead, and return 1 if it does."""
    if not check:
        if updated != current:
            path.write_text(updated)
        return 0
    if updated == current:
        return 0
    diff = difflib.unified_diff(current.splitlines(True), updated.splitlines(True), f"{path.name} (as it is)",
                                f"{path.name} (as `{command}` makes it)")
    sys.stdout.writelines(diff)
    print(f"\n{path.name} is not current: run `{command}`", file=sys.stderr)
    return 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1, printing a diff, if a block is not current")
    parser.add_argument("--env", action="append", choices=sorted(ENVIRONMENTS),
                        help="only this environment's examples (repeatable); default: all, and the rule catalogue")
    parser.add_argument("--python", help="run the examples with this interpreter as it is, instead of a venv")
    parser.add_argument("--readme", type=Path, default=README, help=argparse.SUPPRESS)  # the tests' copy
    args = parser.parse_args()
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    readme = args.readme.read_text()
    envs = args.env or sorted(ENVIRONMENTS)
    updated = regenerate(readme, envs, interpreters_for(envs, args.python, log), log)
    if not args.env:
        import catalogue

        updated = catalogue.replace(updated, catalogue.current())
    command = "python3 tools/readme.py" + "".join(f" --env {env}" for env in args.env or [])
    return update(args.readme, readme, updated, args.check, command)


if __name__ == "__main__":
    raise SystemExit(main())
