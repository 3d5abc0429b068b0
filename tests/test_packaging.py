"""The package as users get it: the sdist builds into a wheel that holds the tree and nothing else, and every
install, from that wheel or editable, by pip or by uv, finds its shipped rules and patches child processes.

The builds run without build isolation (build and hatchling come from tests/requirements/engine.txt), so no
package index is needed. tools/test.py runs these tests once, in its engine-3.11 tier.
"""

from __future__ import annotations

import configparser
import email.parser
import fnmatch
import importlib.util
import json
import re
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from conftest import PICKLER_SOURCE, ROOT, RULE_FILE, check, clean_env, pyproject, uv_command

pytestmark = pytest.mark.packaging

VERSION = re.findall(r'^__version__ = "(.+)"$', (ROOT / "astpatch" / "_base" / "__init__.py").read_text(), re.M)[0]
NAME = f"astpatch-{VERSION}"
PTH = "astpatch-autoinstall.pth"
# What the sdist carries besides PKG-INFO: the package, its rules, and what its tests and tools need.
SDIST_TOPS = ("astpatch", "rules", "tests", "tools", "benchmarks", "demo", "README.md", "CHANGELOG.md", "LICENSE",
              PTH, "pyproject.toml", ".gitignore")
FRONT_ENDS = ["pip", pytest.param("uv", marks=pytest.mark.uv)]

# Run as `python script.py`: this process, a multiprocessing spawn child and a subprocess each report whether
# pickler is patched and which astpatch (if any) was loaded before pickler was imported.
SCRIPT = r'''
import json, multiprocessing, subprocess, sys

def report():
    astpatch = sys.modules.get("astpatch")
    import pickler
    patched = "ValueError" in pickler.Pickler.dumps.__code__.co_names
    return {"patched": patched, "astpatch": astpatch and astpatch.__file__}

def child(queue):
    queue.put(report())

if __name__ == "__main__":
    if sys.argv[1:] == ["report"]:
        print(json.dumps(report()))
        raise SystemExit
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=child, args=(queue,))
    process.start()
    spawned = queue.get(timeout=120)
    process.join(120)
    out = subprocess.run([sys.executable, __file__, "report"], capture_output=True, text=True, check=True).stdout
    print(json.dumps({"parent": report(), "spawn": spawned, "subprocess": json.loads(out)}))
'''


def tree(*tops: str) -> set[str]:
    """The checkout's files under `tops` (directories or files), less what .gitignore ignores: what a build may take."""
    patterns = [line.strip().rstrip("/") for line in (ROOT / ".gitignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    found = set()
    for top in tops:
        path = ROOT / top
        for file in [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]:
            relative = file.relative_to(ROOT)
            if not any(fnmatch.fnmatch(part, pattern) for part in relative.parts for pattern in patterns):
                found.add(relative.as_posix())
    return found


def run(*command: object, cwd: Path, **env: str) -> str:
    """The output of `command`, run in `cwd` with `env` and no PYTHONPATH but env's: a fresh environment must
    import its own astpatch, never this process's."""
    environment = clean_env()
    environment.pop("PYTHONPATH", None)
    return check(subprocess.run([str(c) for c in command], capture_output=True, text=True, cwd=cwd, timeout=300,
                                env={**environment, **env}))


def uv(*command: object, cwd: Path) -> str:
    """uv, offline, with a cache in `cwd` and no configuration but the command's."""
    return run(uv_command(), *command, "--offline", "--no-config", cwd=cwd, UV_CACHE_DIR=str(cwd / "uv-cache"),
               UV_PYTHON_DOWNLOADS="never")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """build(front_end) -> (sdist, wheel built from that sdist), each front end's once."""
    missing = [name for name in ("build", "hatchling") if importlib.util.find_spec(name) is None]
    if missing:
        pytest.fail(f"these tests need {', '.join(missing)}: install tests/requirements/engine.txt")
    results: dict[str, tuple[Path, Path]] = {}

    def build(front_end: str) -> tuple[Path, Path]:
        if front_end not in results:
            out = tmp_path_factory.mktemp(f"dist-{front_end}")
            if front_end == "pip":  # `pip install astpatch-X.tar.gz` builds its wheel this way
                run(sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", out, ROOT, cwd=out)
                (sdist,) = out.glob("*.tar.gz")
                run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
                    "--wheel-dir", out, sdist, cwd=out)
            else:  # `uv build` makes the sdist, then the wheel from it
                uv("build", "--no-build-isolation", "--python", sys.executable, "--out-dir", out, ROOT, cwd=out)
            results[front_end] = (next(out.glob("*.tar.gz")), next(out.glob("*.whl")))
        return results[front_end]

    return build


@pytest.fixture(scope="module")
def deps(tmp_path_factory) -> Path:
    """This environment's packages but astpatch, for the fresh environments (through a .pth file): they get libcst,
    packaging and hatchling from here, and no astpatch but the one installed into them."""
    deps = tmp_path_factory.mktemp("deps")
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if "astpatch" not in entry.name.lower():
            (deps / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    return deps


@pytest.mark.parametrize("front_end", FRONT_ENDS)
def test_the_sdist_has_the_tree_the_tests_and_tools_need(built, front_end):
    sdist, _ = built(front_end)
    with tarfile.open(sdist) as archive:
        members = {m.name for m in archive.getmembers() if m.isfile()}
    assert members == {f"{NAME}/{path}" for path in tree(*SDIST_TOPS)} | {f"{NAME}/PKG-INFO"}


@pytest.mark.parametrize("front_end", FRONT_ENDS)
def test_the_wheel_built_from_the_sdist_holds_the_tree_and_nothing_else(built, front_end):
    """No stale file (a deleted module still shipped), none missing: the package, the rules as astpatch/rules, the .pth,
    each as it is in the tree; and the metadata."""
    _, wheel = built(front_end)
    sources = {path: path for path in tree("astpatch", PTH)} | {f"astpatch/{path}": path for path in tree("rules")}
    info = {f"{NAME}.dist-info/{name}"
            for name in ("METADATA", "WHEEL", "RECORD", "entry_points.txt", "licenses/LICENSE")}
    with zipfile.ZipFile(wheel) as archive:
        assert set(archive.namelist()) == set(sources) | info
        shipped = {path: archive.read(path) for path in sources}
    assert shipped == {path: (ROOT / source).read_bytes() for path, source in sources.items()}


def test_the_wheel_metadata(built):
    """The version of astpatch/_base, an SPDX license with its file (and no license classifier, as PEP 639 asks),
    pyproject.toml's dependencies, the command and the pytest plugin."""
    project = pyproject()["project"]
    _, wheel = built("pip")
    with zipfile.ZipFile(wheel) as archive:
        metadata = email.parser.HeaderParser().parsestr(archive.read(f"{NAME}.dist-info/METADATA").decode())
        entry_points = configparser.ConfigParser(delimiters=("=",))
        entry_points.read_string(archive.read(f"{NAME}.dist-info/entry_points.txt").decode())
        assert archive.read(f"{NAME}.dist-info/licenses/LICENSE") == (ROOT / "LICENSE").read_bytes()
    assert (metadata["Name"], metadata["Version"], metadata["Requires-Python"]) == ("astpatch", VERSION, ">=3.10")
    license = (metadata["License-Expression"], metadata.get_all("License-File"), metadata["License"])
    assert license == ("MIT", ["LICENSE"], None)
    classifiers = metadata.get_all("Classifier")
    assert [c for c in classifiers if c.startswith("License ::")] == []
    assert {"Framework :: Pytest", "Typing :: Typed"} <= set(classifiers)
    requirements = [str(Requirement(r)) for r in metadata.get_all("Requires-Dist")]
    assert requirements == [str(Requirement(r)) for r in project["dependencies"]]
    urls = sorted(url.split(",")[0] for url in metadata.get_all("Project-URL"))
    assert urls == ["Changelog", "Homepage", "Issues", "Source"]
    assert dict(entry_points["console_scripts"]) == {"astpatch": "astpatch.cli:main"}
    assert dict(entry_points["pytest11"]) == {"astpatch": "astpatch.pytest_plugin"}


def fresh_venv(root: Path, deps: Path) -> tuple[Path, Path]:
    """A new environment without pip that reaches `deps`; (its python, its site-packages)."""
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=root).strip())
    # Named to come before astpatch-autoinstall.pth: site reads .pth files in name order.
    (purelib / "_test_environment.pth").write_text(f"{deps}\n")
    return python, purelib


@pytest.mark.parametrize("front_end", FRONT_ENDS)
@pytest.mark.parametrize("kind", ["wheel", "editable"])
def test_an_install_finds_its_rules_and_patches_child_processes(built, deps, tmp_path, front_end, kind):
    """Installed from the wheel built from the sdist, or editable (which gets the .pth as well): `astpatch list` shows
    the shipped rules where the install put them, and under `astpatch run` or ASTPATCH_AUTOINSTALL=1 a spawn child
    and a subprocess are patched by the installed astpatch; without either, nothing is."""
    python, purelib = fresh_venv(tmp_path, deps)
    target = built(front_end)[1] if kind == "wheel" else ROOT
    options = ["--no-deps"] + (["--no-build-isolation", "-e"] if kind == "editable" else [])
    if front_end == "pip":
        run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-index", *options, target,
            cwd=tmp_path)
    else:
        uv("pip", "install", "--python", python, *options, target, cwd=tmp_path)
    home = purelib / "astpatch" if kind == "wheel" else ROOT / "astpatch"
    rules = home / "rules" if kind == "wheel" else ROOT / "rules"
    assert (purelib / PTH).read_bytes() == (ROOT / PTH).read_bytes()

    from astpatch._model.ruleset import load_rules

    shipped = {r.id: str(rules / Path(r.origin).name) for r in load_rules([ROOT / "rules"], pytest.fail)}
    astpatch = python.parent / "astpatch"
    listed = json.loads(run(astpatch, "list", "--json", cwd=tmp_path, ASTPATCH_CACHE_DIR=str(tmp_path / "cache")))
    assert {row["id"]: row["origin"] for row in listed} == shipped != {}

    site = tmp_path / "site"
    site.mkdir()
    (site / "pickler.py").write_text(PICKLER_SOURCE)
    (tmp_path / "rule.py").write_text(RULE_FILE)
    (tmp_path / "script.py").write_text(SCRIPT)
    env = dict(PYTHONPATH=str(site), ASTPATCH_RULES=str(tmp_path / "rule.py"),
               ASTPATCH_CACHE_DIR=str(tmp_path / "cache"))
    patched = {"patched": True, "astpatch": str(home / "__init__.py")}
    every = {"parent": patched, "spawn": patched, "subprocess": patched}
    assert json.loads(run(astpatch, "run", "--", "script.py", cwd=tmp_path, **env)) == every
    assert json.loads(run(python, "script.py", cwd=tmp_path, ASTPATCH_AUTOINSTALL="1", **env)) == every
    unpatched = {"patched": False, "astpatch": None}
    assert json.loads(run(python, "script.py", cwd=tmp_path, **env)) == dict.fromkeys(every, unpatched)
