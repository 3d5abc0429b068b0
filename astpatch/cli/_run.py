"""`astpatch run`: run a Python program with astpatch installed first, as `coverage run` does.

The program runs in this process, as `python` would run it (`script.py`, `-m module`, `-c code`,
with `sys.argv` and `sys.path[0]` set the same way), so no change to the program is needed to
try a rule. The settings are passed through the environment, with ASTPATCH_AUTOINSTALL=1, so
every Python process the program starts installs astpatch at start-up as well.
"""

from __future__ import annotations

import argparse
import os
import runpy
import sys

from .._base import settings
from .._hook.installation import install
from ._common import UsageError, load_rules


def cmd_run(args: argparse.Namespace) -> int:
    return run_program(args.program, rule_ids=args.rule, strict=args.strict, rule_paths=args.rules)


def run_program(program: list[str], *, rule_ids: list[str] | None, strict: bool, rule_paths: list[str]) -> int:
    if program and program[0] == "--":
        program = program[1:]
    if not program:
        raise UsageError("nothing to run: give `-- script.py [args]`, `-- -m module [args]` or `-- -c code [args]`")
    if rule_paths:
        os.environ[settings.RULES] = os.pathsep.join([*settings.rule_paths(), *map(os.path.abspath, rule_paths)])
    if strict:
        os.environ[settings.STRICT] = "1"
    if rule_ids:
        known = load_rules([])
        chosen = {r.id for r in load_rules([], rule_ids)}
        others = sorted(r.id for r in known if r.id not in chosen)
        disabled = settings.disabled()
        if others or disabled.rule_ids:
            os.environ[settings.DISABLE] = ",".join(sorted(set(others) | set(disabled.rule_ids)))

    kind, target, args = _parse(program)
    # Every Python process the program starts installs astpatch too (astpatch-autoinstall.pth).
    os.environ[settings.AUTOINSTALL] = "1"
    install()
    if kind == "module":
        sys.argv = [target, *args]  # runpy sets argv[0] to the module's file
        sys.path[0] = os.getcwd()
        runpy.run_module(target, run_name="__main__", alter_sys=True)
    elif kind == "code":
        sys.argv = ["-c", *args]
        sys.path[0] = ""
        namespace = {"__name__": "__main__", "__builtins__": __builtins__}
        exec(compile(target, "<string>", "exec"), namespace)
    else:
        if not os.path.exists(target):
            raise UsageError(f"can't open file {target!r}: no such file")
        sys.argv = [target, *args]
        sys.path[0] = os.path.dirname(os.path.abspath(target))
        runpy.run_path(target, run_name="__main__")
    return 0


def _parse(program: list[str]) -> tuple[str, str, list[str]]:
    first = program[0]
    if first in ("-m", "-c"):
        if len(program) < 2:
            raise UsageError(f"{first} needs an argument")
        return ("module" if first == "-m" else "code"), program[1], program[2:]
    if first.startswith("-"):
        raise UsageError(f"unknown option {first!r} for the program: give a script, -m module or -c code")
    return "script", first, program[1:]
