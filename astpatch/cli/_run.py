"""`astpatch run`: run a program with astpatch installed in every Python process it starts.

`astpatch run [--rule ID]... [--strict] [--rules PATH]... PROGRAM [ARGS]...` runs what `python`
runs with the same arguments when PROGRAM is an option (`-m module`, `-c code`, `-W error` ...),
names an existing file or directory, or looks like a path (a separator, a `.py` name); any
other PROGRAM is a command found on PATH (`torchrun`, `python`, `pytest`, `ray` ...). It replaces
itself with that program (exec), ASTPATCH_AUTOINSTALL=1 and its settings in the environment: the
program runs as it would without astpatch (its own `__main__`, no astpatch frame in its
tracebacks), and every Python process of the environment that it starts installs astpatch at
start-up, through `astpatch-autoinstall.pth`.

An interpreter without that .pth (astpatch imported from a checkout, say) runs a Python program
through a bootstrap that installs astpatch first (`astpatch._autoinstall.run_main`); the
processes such a program starts are not patched, which one line says, as for a command.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys

from .._base import settings
from ._common import UsageError, load_rules

USAGE = "astpatch run [--rule ID]... [--strict] [--rules PATH]... PROGRAM [ARGS]..."
DESCRIPTION = ("Run PROGRAM with astpatch installed in every Python process it starts: a script, a directory or zip, "
               "-m module, -c code (with any python options first), as python runs them, or a command on PATH "
               "(torchrun, python, ...). astpatch's own options come before PROGRAM.")
PTH = "astpatch-autoinstall.pth"
_OWN = {"--rule": True, "--rules": True, "--strict": False, "-h": False, "--help": False}  # option: takes a value


def configure(parser: argparse.ArgumentParser) -> None:
    """The `run` command's options (PROGRAM is split off before argparse sees it: see `split`)."""
    parser.usage, parser.description = USAGE, DESCRIPTION
    parser.add_argument("--rule", action="append", metavar="ID", help="apply only this rule (repeatable)")
    parser.add_argument("--strict", action="store_true", help="a rule that cannot do its job raises")
    parser.set_defaults(run=cmd_run, program=[])


def split(argv: list[str]) -> tuple[list[str], list[str]]:
    """`astpatch run`'s own arguments and the program's: the program starts at the first argument
    that is not one of run's options (`--` may mark it), so `-m`, `-c` and `-W` are the program's."""
    if argv[:1] != ["run"]:
        return argv, []
    index = 1
    while index < len(argv):
        name = argv[index].split("=", 1)[0]
        if argv[index] == "--":
            return argv[:index], argv[index + 1:]
        if name not in _OWN:
            break
        index += 2 if _OWN[name] and "=" not in argv[index] else 1
    return argv[:index], argv[index:]


def cmd_run(args: argparse.Namespace) -> int:
    if not args.program:
        raise UsageError("nothing to run: give a script, -m module, -c code or a command, and its arguments")
    _set_environment(args.rule, args.strict, args.rules)
    first = args.program[0]
    if first.startswith("-") or os.path.exists(first) or os.sep in first or first.endswith((".py", ".pyz")):
        return _python(sys.executable, args.program)
    found = shutil.which(first)
    if found is None:
        print(f"astpatch run: {first}: command not found", file=sys.stderr)
        return 127
    if _is_this_python(found):
        return _python(first, args.program[1:], found)
    if _pth() is None:
        print(f"astpatch: {_missing_pth()}, so the Python processes that {first} starts are patched only where "
              "astpatch is installed with pip, not here.", file=sys.stderr)
    return _execute(found, args.program)


def _set_environment(rule_ids: list[str] | None, strict: bool, rule_paths: list[str]) -> None:
    """The settings the program's processes install astpatch with, in this process's environment.

    The user's variables pass through unchanged, so that each process reports a bad value itself;
    only what run's options change is set. (`settings.child_environment`, for install(children=True),
    restates resolved values instead, so that a child cannot inherit another setting.)"""
    for path in rule_paths:
        if not os.path.exists(path):
            raise UsageError(f"rule path {path} does not exist")
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
    os.environ[settings.AUTOINSTALL] = "1"


def _python(name: str, arguments: list[str], path: str | None = None) -> int:
    """Run `python ARGUMENTS` with this interpreter: as is when its .pth installs astpatch at
    start-up, else through the bootstrap, which runs the program as python would."""
    options, program, no_site = _python_options(arguments)
    if _pth(no_site) is not None or program[1:2] == [None]:  # (a missing -c/-m value: python says so)
        return _execute(path or name, [name, *arguments])
    advice = "" if "S" in no_site else "; install astpatch with pip to patch them too"
    print(f"astpatch: {_missing_pth(no_site)}, so the program starts through a bootstrap, and the Python processes it "
          f"starts are not patched{advice}.", file=sys.stderr)
    home = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    bootstrap = (f"__import__('sys').path.insert(0, {home!r}) or __import__('astpatch._autoinstall') and "
                 f"__import__('sys').modules['astpatch._autoinstall'].run_main({home!r})")
    return _execute(path or name, [name, *options, "-c", bootstrap, *program])


def _python_options(arguments: list[str]) -> tuple[list[str], list[str], str]:
    """Split python's command line into its options and the program (`-m module`, `-c code`,
    a path, `-`, or nothing), with the option letters that turn site-packages off (-S, -s, -I)."""
    index, letters = 0, ""
    while index < len(arguments):
        argument = arguments[index]
        if argument == "--":
            return arguments[:index], arguments[index + 1:], letters
        if not argument.startswith("-") or argument == "-":
            break
        if argument.startswith("--"):
            index += 2 if argument == "--check-hash-based-pycs" else 1
            continue
        for position, letter in enumerate(argument[1:], 1):
            rest = argument[position + 1:]
            if letter in "cm":  # the program: its value is the rest of this argument, or the next one
                value = rest or (arguments[index + 1] if index + 1 < len(arguments) else None)
                options = arguments[:index] + ([argument[:position]] if position > 1 else [])
                return options, [f"-{letter}", value, *arguments[index + (1 if rest else 2):]], letters  # type: ignore[list-item]
            if letter in "WX":  # a value: the rest of this argument, or the next one
                index += 0 if rest else 1
                break
            letters += letter
        index += 1
    return arguments[:index], arguments[index:], letters


def _pth(no_site: str = "") -> str | None:
    """The site directory whose astpatch-autoinstall.pth this interpreter runs at start-up (as
    given these option letters), if any. A .pth file elsewhere on sys.path (a checkout) is not run."""
    import site

    if "S" in no_site:
        return None
    directories = list(site.getsitepackages())
    if site.ENABLE_USER_SITE and not set(no_site) & {"s", "I"}:
        directories.append(site.getusersitepackages())
    return next((d for d in directories if os.path.isfile(os.path.join(d, PTH))), None)


def _missing_pth(no_site: str = "") -> str:
    import sysconfig

    if "S" in no_site:
        return f"python -S does not run the {PTH} of site-packages"
    return f"{PTH} is not in this Python's site-packages ({sysconfig.get_paths()['purelib']})"


def _is_this_python(found: str) -> bool:
    """Whether the command found on PATH is this interpreter (`python` of the same environment)."""
    here = os.path.dirname(os.path.abspath(sys.executable))
    try:
        return os.path.dirname(os.path.abspath(found)) == here and os.path.samefile(found, sys.executable)
    except OSError:
        return False


def _execute(path: str, argv: list[str]) -> int:
    """Become the program (POSIX); elsewhere run it and pass its exit status on."""
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "nt":
        import subprocess

        process = subprocess.Popen([path, *argv[1:]])
        while True:
            try:
                return process.wait()
            except KeyboardInterrupt:  # the program has it too, and decides
                continue
    try:
        os.execv(path, argv)
    except OSError as error:
        print(f"astpatch run: {argv[0]}: {error.strerror}", file=sys.stderr)
        return 126
    raise AssertionError("unreachable")  # pragma: no cover
