"""Shared helpers: modules written by the tests, isolated installs, the environment of a subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path
from site import getsitepackages, getusersitepackages

import pytest

import astpatch
from astpatch.testing import clear_outcomes

ROOT = Path(__file__).resolve().parent.parent

# A module with the bug shape the shipped rule fixes, small enough to read in a test.
PICKLER_SOURCE = '''\
import pickle


class Bypass(Exception):
    pass


def before():
    return "line 9"


class Pickler:
    def dumps(self, obj):
        """Pickle obj."""
        try:
            return pickle.dumps(obj)
        except (TypeError, AttributeError) as e:
            # Some objects may not pickle.
            raise Bypass("Failed to pickle") from e
        finally:
            pass

    def after(self):
        return "line 24"
'''


def rule(**overrides):
    """A rule on the test module `pickler`, adding ValueError to its Bypass clause."""
    fields = dict(
        id="pickler-valueerror",
        summary="Turn ValueError into Bypass too",
        module="pickler",
        target="Pickler.dumps",
        edit=astpatch.AddExceptTypes(add=("ValueError",), converts_to="Bypass"),
        upstream="test fixture",
    )
    fields.update(overrides)
    return astpatch.Rule(**fields)


RULE_FILE = '''\
from astpatch import AddExceptTypes, Rule

RULE = Rule(
    id="pickler-valueerror",
    summary="Turn ValueError into Bypass too",
    module="pickler",
    target="Pickler.dumps",
    edit=AddExceptTypes(add=("ValueError",), converts_to="Bypass"),
    upstream="test fixture",
)
'''


def pyproject() -> dict:
    """The checkout's pyproject.toml, parsed."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def install_dist(site: Path, name: str, version: str) -> Path:
    """Write `<name>-<version>.dist-info/METADATA` into `site`, as an installed distribution has.

    A later call for the same name rewrites the version in place (same directory name), as the
    tests that change an installed version need.
    """
    existing = sorted(site.glob(f"{name}-*.dist-info"))
    dist = existing[0] if existing else site / f"{name}-{version}.dist-info"
    dist.mkdir(exist_ok=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n")
    return dist


def write_module(root: Path, name: str, source: str) -> Path:
    """Write the module `name` (dotted: its packages get an empty __init__.py) under `root`.

    A source that starts with a newline is an indented triple-quoted string: it is dedented.
    """
    parts = name.split(".")
    directory = root
    for package in parts[:-1]:
        directory = directory / package
        directory.mkdir(exist_ok=True)
        init = directory / "__init__.py"
        if not init.exists():
            init.write_text("")
    path = directory / f"{parts[-1]}.py"
    path.write_text(textwrap.dedent(source) if source.startswith("\n") else source)
    return path


def require_torch(version: str) -> None:
    """Fail (not skip) when the torch tests run without the torch release they are about."""
    from astpatch._base.metadata import installed_version

    found = installed_version("torch")
    if found is None or not found.startswith(version):
        pytest.fail(f"these tests need torch {version} installed, found {found}; run `python3 tools/test.py`")


@pytest.fixture
def modules(tmp_path, monkeypatch):
    """Write modules into a fresh sys.path entry; forget them from sys.modules afterwards."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    written: list[str] = []

    def write(name: str, source: str) -> Path:
        path = write_module(root, name, source)
        written.append(name)
        return path

    write.root = root  # type: ignore[attr-defined]
    yield write
    for name in list(sys.modules):
        if any(name == w or name.startswith(w.split(".")[0] + ".") or name == w.split(".")[0] for w in written):
            del sys.modules[name]


@pytest.fixture
def hook(tmp_path):
    """install() with a private cache; uninstalled and the outcome record cleared afterwards."""
    installations = []

    def install(**kwargs):
        kwargs.setdefault("cache_dir", tmp_path / "cache")
        installation = astpatch.install(**kwargs)
        installations.append(installation)
        return installation

    clear_outcomes()
    yield install
    for installation in installations:
        installation.uninstall()
    astpatch.uninstall()
    clear_outcomes()


# Where this process imported astpatch from, when that is not a site-packages directory (plain
# `pytest` in a checkout, pyproject.toml's `pythonpath`): the subprocesses the tests start must
# import that same copy, not an installed one or none.
_ASTPATCH_HOME = str(Path(astpatch.__file__).resolve().parent.parent)
_SITE_DIRS = {str(Path(p).resolve()) for p in [*getsitepackages(), getusersitepackages()]}
_EXTRA_PATH = [] if _ASTPATCH_HOME in _SITE_DIRS else [_ASTPATCH_HOME]


def clean_env(site: Path | None = None, **extra: str) -> dict[str, str]:
    """The environment for a subprocess: no astpatch settings from outside the test, `site`
    (a directory of modules the test wrote) first on PYTHONPATH, and this process's astpatch.
    No VIRTUAL_ENV either: the command line would inspect a virtual environment active outside
    the test instead of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASTPATCH_") and k != "VIRTUAL_ENV"}
    env.update(extra)
    paths = [str(site) if site is not None else "", env.get("PYTHONPATH", ""), *_EXTRA_PATH]
    if any(paths):
        env["PYTHONPATH"] = os.pathsep.join(filter(None, paths))
    return env


def check(result: subprocess.CompletedProcess) -> str:
    """The stdout of a subprocess that must have succeeded."""
    assert result.returncode == 0, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result.stdout


def pytest_report_header(config):
    from astpatch._model.rulefiles import builtin_rules_dir

    return [f"astpatch {astpatch.__version__} from {Path(astpatch.__file__).parent}, rules from {builtin_rules_dir()}"]


# The fault matrix (README, "Hardening"): each test_faults_*.py case with its result, written
# to the file ASTPATCH_FAULT_MATRIX names, by the test run itself.
_fault_results: dict[str, tuple[str, str, str]] = {}


def pytest_runtest_logreport(report):
    module = report.nodeid.split("::")[0].rsplit("/", 1)[-1]
    if not module.startswith("test_faults_"):
        return
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        previous = _fault_results.get(report.nodeid)
        if previous is None or report.outcome != "passed":
            concern = module[len("test_faults_"):-3].replace("_", " ")
            _fault_results[report.nodeid] = (concern, report.nodeid.split("::")[1], report.outcome)


# Markers for tests that need a newer Python than the oldest supported: deselected (as `-m` does),
# never skipped, on older interpreters, so that a skip always means something did not run.
NEEDS_PYTHON = {"python311": (3, 11), "python312": (3, 12)}


def installed() -> bool:
    """Whether the astpatch under test is an installed distribution (tools/test.py installs it into
    each tier's venv), not a checkout on sys.path (plain pytest): only then are its pytest11 entry
    point and its .pth file in place."""
    package = Path(astpatch.__file__).resolve().parent
    return any(package.parent.glob("astpatch-*.dist-info"))


def uv_command() -> str | None:
    """The uv command of this environment (tests/requirements/engine.txt installs it), else of PATH, or None."""
    return shutil.which("uv", path=os.pathsep.join([sysconfig.get_path("scripts"), os.environ.get("PATH", "")]))


def pytest_collection_modifyitems(config, items):
    unrunnable = [item for item in items
                  if any(sys.version_info < needed and item.get_closest_marker(name) for name, needed in NEEDS_PYTHON.items())
                  or (item.get_closest_marker("installed") and not installed())
                  or (item.get_closest_marker("uv") and not uv_command())]
    if unrunnable:
        config.hook.pytest_deselected(items=unrunnable)
        items[:] = [item for item in items if item not in unrunnable]
    for item in items:
        doc = (getattr(item.function, "__doc__", None) or "").strip().splitlines()
        item.user_properties.append(("case", doc[0] if doc else item.name))
        _fault_cases[item.nodeid] = doc[0] if doc else item.name


_fault_cases: dict[str, str] = {}


def pytest_sessionfinish(session):
    target = os.environ.get("ASTPATCH_FAULT_MATRIX")
    if not target or not _fault_results:
        return
    rows = ["| concern | case | result |", "|---|---|---|"]
    for nodeid, (concern, name, result) in _fault_results.items():
        case = _fault_cases.get(nodeid, name)
        param = name[name.index("[") :] if "[" in name else ""
        rows.append(f"| {concern} | {case}{' ' + param if param else ''} | {result} |")
    Path(target).write_text("\n".join(rows) + "\n")


def code_fields(code):
    """Everything that makes a code object what it is, nested code objects included.

    marshal output cannot be compared (it records object sharing, which differs between two
    equal compiles), so tests compare these fields.
    """
    import types

    fields = {}
    for name in dir(code):
        if name.startswith("co_") and name not in ("co_lnotab",):
            value = getattr(code, name)
            if callable(value):  # co_lines(), co_positions(): compared below
                continue
            if name == "co_consts":
                value = tuple(code_fields(c) if isinstance(c, types.CodeType) else (type(c).__name__, repr(c)) for c in value)
            fields[name] = value
    fields["positions"] = list(code.co_positions()) if hasattr(code, "co_positions") else list(code.co_lines())
    return fields
