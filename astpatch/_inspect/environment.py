"""Which Python environment the command line inspects: its own, the active virtual environment, or `--python`.

astpatch installed once for a user (pipx, uvx) runs in an environment of its own, while the
project's packages are in another: the active virtual environment (VIRTUAL_ENV), or the one
`--python` names. That interpreter may be another Python version and need not have astpatch or
libcst, so nothing of astpatch runs there: a tiny program asks it for its search path and
version, and the sources and metadata are read from those directories in this process.
"""

from __future__ import annotations

import os
import sys

from .sources import SourceError

# Asked of the target interpreter: its search path (without the current directory that `-c`
# puts first), prefix and version. Plain enough for any Python, printed after a marker so that
# whatever a .pth file of that environment prints is not taken for the answer.
MARKER = "astpatch-environment:"
_PROGRAM = (
    "import json, os, sys\n"
    "p = sys.path[1:] if sys.path[:1] == [''] else sys.path\n"
    "print('\\n' + MARKER + json.dumps({'path': [os.path.abspath(e) for e in p if isinstance(e, str)], "
    "'prefix': sys.prefix, 'executable': sys.executable, "
    "'version': '.'.join(str(n) for n in sys.version_info[:3])}))\n"
).replace("MARKER", repr(MARKER))
TIMEOUT = 60


class Environment:
    """An environment's interpreter, prefix, version and search path. `path` None is astpatch's own
    environment, read from `sys.path` when used; another interpreter's is what it answered, and
    the output names such an environment, as it is not the obvious one."""

    def __init__(self, python: str, prefix: str, version: str, path: list[str] | None) -> None:
        self.python = python
        self.prefix = prefix
        self.version = version
        self.path = path

    @property
    def other(self) -> bool:
        """Whether another interpreter was asked (`--python`, VIRTUAL_ENV)."""
        return self.path is not None

    def describe(self) -> str:
        return f"{self.prefix} (Python {self.version})"

    def as_json(self) -> dict:
        return {"prefix": self.prefix, "python": self.python, "version": self.version}


def own() -> Environment:
    """The environment astpatch itself runs in."""
    return Environment(sys.executable, sys.prefix, ".".join(map(str, sys.version_info[:3])), None)


def interpreter_of(directory: str) -> str | None:
    """The Python interpreter of a virtual environment's directory, if it has one."""
    for candidate in (os.path.join(directory, "bin", "python"), os.path.join(directory, "Scripts", "python.exe")):
        if os.path.isfile(candidate):
            return candidate
    return None


def active() -> str | None:
    """The interpreter of the active virtual environment, when it is not astpatch's own (astpatch
    installed apart, as pipx and uvx do); SourceError when VIRTUAL_ENV names no environment."""
    directory = os.environ.get("VIRTUAL_ENV", "").strip()
    if not directory or _same(directory, sys.prefix):
        return None
    python = interpreter_of(directory)
    if python is None:
        raise SourceError(f"VIRTUAL_ENV={directory} is not a virtual environment (it has no bin/python): "
                          "deactivate it, or name an interpreter with --python")
    return python


def target(python: str | None) -> Environment:
    """The environment to inspect: `--python`'s, else the active virtual environment, else astpatch's own."""
    if python is None:
        python = active()
        if python is None:
            return own()
    return query(python)


def query(python: str) -> Environment:
    """Ask the interpreter `python` (a path, a name on PATH, or a virtual environment's directory)
    for its environment; SourceError, in one line, when it is no Python interpreter."""
    import json
    import shutil
    import subprocess

    given = python
    if os.path.isdir(python):
        found = interpreter_of(python)
        if found is None:
            raise SourceError(f"--python {given}: a directory without bin/python (not a virtual environment)")
        python = found
    elif os.sep not in python and (os.altsep is None or os.altsep not in python):
        found = shutil.which(python)  # a name, such as python3.12, found as the shell would
        if found is None:
            raise SourceError(f"--python {given}: no such file, and no command of that name on PATH")
        python = found
    python = os.path.abspath(python)
    if not os.path.exists(python):
        raise SourceError(f"--python {given}: no such file")
    if not os.access(python, os.X_OK) or os.path.isdir(python):
        raise SourceError(f"--python {given}: not an executable file")
    environ = {k: v for k, v in os.environ.items() if k != "ASTPATCH_AUTOINSTALL"}  # astpatch is not run there
    try:
        done = subprocess.run([python, "-c", _PROGRAM], capture_output=True, text=True, errors="replace",
                              env=environ, stdin=subprocess.DEVNULL, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        raise SourceError(f"--python {given}: it did not answer within {TIMEOUT} s") from None
    except OSError as error:
        raise SourceError(f"--python {given}: cannot be run: {error.strerror or error}") from None
    answer = [line for line in done.stdout.splitlines() if line.startswith(MARKER)]
    try:
        data = json.loads(answer[-1][len(MARKER):]) if done.returncode == 0 and answer else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        said = (done.stderr.strip().splitlines() or [""])[-1].strip()[:200]
        raise SourceError(f"--python {given}: not a Python interpreter (it exited with status {done.returncode}"
                          f"{': ' + said if said else ''})")
    return Environment(data["executable"] or python, data["prefix"], data["version"], list(data["path"]))


def _same(a: str, b: str) -> bool:
    return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def unloaded_rules(env: Environment) -> list[str]:
    """The distributions of another environment that declare rules (`astpatch.rules` entry points)
    which the command line does not load: it imports no code of another environment, and loads
    only the entry points of its own (the same distribution installed in both counts as loaded)."""
    from importlib.metadata import distributions

    from .._model.entrypoints import GROUP

    def declaring(path: list[str] | None) -> set[str]:
        found = set()
        for dist in distributions(path=path) if path is not None else distributions():
            try:
                if any(ep.group == GROUP for ep in dist.entry_points):
                    found.add(str(dist.metadata["Name"]))
            except Exception:  # unreadable metadata: reported, if at all, where it is read for its rules
                continue
        return found

    if env.path is None:
        return []
    try:
        return sorted(declaring(env.path) - declaring(None))
    except Exception:
        return []
