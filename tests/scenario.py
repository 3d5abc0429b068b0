"""A fresh-process scenario for the fault matrix: a target module, a rule, a cache, a program.

Each run starts a new interpreter that installs astpatch, imports the target and uses it, and
reports as JSON whether the code is patched, what the program printed, the outcomes, and the
AstpatchWarnings (read from stderr, where Python prints them).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import PICKLER_SOURCE, RULE_FILE, clean_env

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


class Scenario:
    def __init__(self, tmp_path: Path, source: str = PICKLER_SOURCE, rule_file: str = RULE_FILE) -> None:
        self.tmp = tmp_path
        self.site = tmp_path / "site"
        self.site.mkdir(exist_ok=True)
        self.module = self.site / "pickler.py"
        self.module.write_text(source)
        self.rule = tmp_path / "rule.py"
        self.rule.write_text(rule_file)
        self.cache = tmp_path / "cache"

    def command(self, *python_args: str, before: str = "", after: str = "", install_args: str | None = None) -> list[str]:
        if install_args is None:
            install_args = f"rules=[{str(self.rule)!r}], cache_dir={str(self.cache)!r}"
        program = PROGRAM.format(before=before, after=after, install_args=install_args)
        return [sys.executable, *python_args, "-c", program]

    def env(self, **extra: str) -> dict[str, str]:
        return clean_env(site=self.site, **extra)

    def run(self, *python_args: str, before: str = "", after: str = "", install_args: str | None = None,
            read_only: tuple[Path, ...] = (), timeout: float = 120, **env: str) -> Run:
        command = self.command(*python_args, before=before, after=after, install_args=install_args)
        if read_only:
            # A private mount namespace in which these paths are read-only, even for root.
            mounts = " && ".join(f"mount -o bind,ro '{p}' '{p}'" for p in read_only)
            command = ["unshare", "-rm", "sh", "-c", f'{mounts} && exec "$@"', "sh", *command]
        return Run(subprocess.run(command, capture_output=True, text=True, env=self.env(**env), timeout=timeout))

    def entries(self) -> list[Path]:
        return sorted(p for p in self.cache.iterdir() if p.name.endswith(".astpatch")) if self.cache.exists() else []
