"""The one scene of the tests that start fresh interpreters: a site directory with the target
module, a rule, a private cache, maybe an installed distribution, and the environment to run in.

`Scenario.run()` runs the fault matrix's program: a new interpreter installs astpatch, imports the
target and uses it, and reports as JSON whether the code is patched, what the program printed, the
outcomes, and the AstpatchWarnings (read from stderr, where Python prints them). `python()`,
`astpatch()`, `pytest()` and `execute()` run any other program in the same scene.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from conftest import PICKLER_SOURCE, RULE_FILE, check, clean_env, install_dist, write_module

PROGRAM = r'''
import json, sys, warnings
warnings.simplefilter("always")
{before}
import astpatch
handle = astpatch.install({install_args})
{after}
import pickler

class Cyclic:
    def __reduce__(self):
        raise ValueError("fast mode: can't pickle cyclic objects")

try:
    pickler.Pickler().dumps(Cyclic())
    output = "no error"
except pickler.Bypass as error:
    output = "Bypass from " + type(error.__cause__).__name__
except ValueError:
    output = "ValueError escaped"
print(json.dumps({{
    "patched": "ValueError" in pickler.Pickler.dumps.__code__.co_names,
    "output": output,
    "outcomes": [[o.status, o.from_cache] for o in astpatch.applied()],
    "reasons": [o.reason for o in astpatch.applied()],
    "libcst": "libcst" in sys.modules,
}}))
'''

PATCHED = "Bypass from ValueError"
UPSTREAM = "ValueError escaped"


def gated(gate: str, rule_file: str = RULE_FILE) -> str:
    """`rule_file` with a gate on its rule (for example "pickledist>=1")."""
    return rule_file.replace("upstream=", f'gate="{gate}",\n    upstream=')


class Run:
    def __init__(self, completed: subprocess.CompletedProcess) -> None:
        self.returncode = completed.returncode
        self.stdout = completed.stdout
        self.stderr = completed.stderr
        lines = completed.stdout.strip().splitlines()
        self.data = json.loads(lines[-1]) if completed.returncode == 0 and lines else {}
        self.warnings = [line.split("AstpatchWarning: ", 1)[1] for line in completed.stderr.splitlines()
                         if "AstpatchWarning: " in line]

    def __getitem__(self, key: str):  # type: ignore[no-untyped-def]
        assert self.returncode == 0, f"exit {self.returncode}\n{self.stdout}\n{self.stderr}"
        return self.data[key]

    def assert_patched(self, from_cache: bool | None = None) -> None:
        assert self["patched"] is True and self["output"] == PATCHED, (self.data, self.stderr)
        if from_cache is not None:
            assert self["outcomes"] == [["applied", from_cache]], self.data


class Result(subprocess.CompletedProcess):
    """A finished program of the scene."""

    def json(self) -> Any:
        """What the program printed, as one JSON document; it must have succeeded."""
        return json.loads(check(self))


class Scenario:
    """The scene in `tmp_path`: `site` (first on PYTHONPATH) holds the target `pickler.py` (unless
    `source` is None), `rule` the rule file (unless `rule_file` is None; with `gate`, gated; with
    `rule_dir`, the only file of the directory `rules`), `cache` the cache directory (made by astpatch).
    `version` installs the distribution `dist` at that version. Programs run in `cwd` (None: this
    process's) unless a call names another.
    """

    def __init__(self, tmp_path: Path, source: str | None = PICKLER_SOURCE, rule_file: str | None = RULE_FILE, *,
                 gate: str | None = None, dist: str = "pickledist", version: str | None = None,
                 rule_dir: bool = False, cwd: Path | None = None) -> None:
        self.tmp = tmp_path
        self.site = tmp_path / "site"
        self.site.mkdir(exist_ok=True)
        self.module = self.site / "pickler.py"
        if source is not None:
            self.module.write_text(source)
        self.rule = tmp_path / "rules" / "pickler_rule.py" if rule_dir else tmp_path / "rule.py"
        # The rule path that install(rules=[...]) and ASTPATCH_RULES name: the file, or its directory.
        self.rules: Path | None = None
        if rule_file is not None:
            self.rule.parent.mkdir(exist_ok=True)
            self.rule.write_text(gated(gate, rule_file) if gate is not None else rule_file)
            self.rules = self.rule.parent if rule_dir else self.rule
        self.cache = tmp_path / "cache"
        self.dist = dist
        if version is not None:
            self.install_dist(version)
        self.cwd = cwd

    def install_dist(self, version: str) -> Path:
        """Install (or change the version of) the distribution `dist` in `site`."""
        return install_dist(self.site, self.dist, version)

    def write(self, name: str, source: str) -> Path:
        """Write another module (dotted names make packages) into `site`."""
        return write_module(self.site, name, source)

    def install_args(self, *rules: Path) -> str:
        """The arguments of install() in a program: these rule paths (default: the scene's), the scene's cache."""
        paths = [str(p) for p in (rules or (self.rules,))]
        return f"rules={paths!r}, cache_dir={str(self.cache)!r}"

    def command(self, *python_args: str, before: str = "", after: str = "",
                install_args: str | None = None) -> list[str]:
        """The fault matrix's program, as a command."""
        if install_args is None:
            install_args = self.install_args()
        program = PROGRAM.format(before=before, after=after, install_args=install_args)
        return [sys.executable, *python_args, "-c", program]

    def env(self, **extra: str | None) -> dict[str, str]:
        """The environment of a fresh interpreter with `site` first on PYTHONPATH; a variable given None is unset."""
        env = clean_env(site=self.site, **{k: v for k, v in extra.items() if v is not None})
        for name in [k for k, v in extra.items() if v is None]:
            env.pop(name, None)
        return env

    def settings(self) -> dict[str, str]:
        """ASTPATCH_RULES and ASTPATCH_CACHE_DIR naming the scene's rule path and cache, for programs that
        do not call install() themselves (the command line, the pytest plugin, the .pth switch)."""
        named = {"ASTPATCH_RULES": str(self.rules)} if self.rules is not None else {}
        return {**named, "ASTPATCH_CACHE_DIR": str(self.cache)}

    def run(self, *python_args: str, before: str = "", after: str = "", install_args: str | None = None,
            read_only: tuple[Path, ...] = (), timeout: float = 120, **env: str | None) -> Run:
        """The fault matrix's program, run and read."""
        command = self.command(*python_args, before=before, after=after, install_args=install_args)
        return Run(self._spawn(command, self.env(**env), self.cwd, read_only, timeout))

    def execute(self, *python_args: str, settings: bool = False, cwd: Path | None = None,
                read_only: tuple[Path, ...] = (), timeout: float = 300, **env: str | None) -> Result:
        """`python *python_args` in the scene's environment; with `settings`, astpatch's rule and cache
        settings name the scene's."""
        environment = self.env(**{**(self.settings() if settings else {}), **env})
        return self._spawn([sys.executable, *python_args], environment, cwd or self.cwd, read_only, timeout)

    def python(self, code: str, *args: str, **options: Any) -> Result:
        """`python -c code *args` (see execute() for the options)."""
        return self.execute("-c", textwrap.dedent(code), *args, **options)

    def astpatch(self, *args: str, settings: bool = True, **options: Any) -> Result:
        """The astpatch command line, with the scene's settings."""
        return self.execute("-m", "astpatch", *args, settings=settings, **options)

    def pytest(self, *args: str, settings: bool = True, **options: Any) -> Result:
        """pytest (without its cache), with the scene's settings."""
        return self.execute("-m", "pytest", "-p", "no:cacheprovider", *args, settings=settings, **options)

    def entries(self) -> list[Path]:
        return sorted(p for p in self.cache.iterdir() if p.name.endswith(".astpatch")) if self.cache.exists() else []

    @staticmethod
    def _spawn(command: list[str], env: dict[str, str], cwd: Path | None, read_only: tuple[Path, ...],
               timeout: float) -> Result:
        if read_only:
            # A private mount namespace in which these paths are read-only, even for root.
            mounts = " && ".join(f"mount -o bind,ro '{p}' '{p}'" for p in read_only)
            command = ["unshare", "-rm", "sh", "-c", f'{mounts} && exec "$@"', "sh", *command]
        done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)
        return Result(done.args, done.returncode, done.stdout, done.stderr)
