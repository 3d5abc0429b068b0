"""The `astpatch` command line: the parser and `main`; each command lives in its own module.

Exit status: 0 success, 1 a finding (a stale rule, a check that failed), 2 bad usage. Errors in
what the user gave (a path, a rule id, a diff) are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import NoReturn

from .._base import __version__
from .._base.messages import AstpatchWarning
from . import _run
from ._cache import cmd_cache
from ._common import EXIT_OK, EXIT_USAGE, UsageError, project_settings
from ._edit import add_commands as add_edit_commands
from ._inspect import cmd_check, cmd_diff, cmd_list
from ._new import cmd_new


class _Parser(argparse.ArgumentParser):
    """Errors name the command they are about (`astpatch check: error: ...`); an unknown option is
    reported as such, not as a missing command."""

    commands: argparse._SubParsersAction | None = None

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[no-untyped-def]
        namespace, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        if self.commands is not None and getattr(namespace, self.commands.dest, None) is None:
            self.error(f"the following arguments are required: {self.commands.metavar}")
        return namespace, extras

    def add_commands(self, dest: str, metavar: str) -> argparse._SubParsersAction:
        """A required choice of subcommand, checked after the options (see `parse_known_args`)."""
        self.commands = self.add_subparsers(dest=dest, metavar=metavar, parser_class=_Parser)
        return self.commands

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="astpatch", description="Fix bugs in installed packages by rewriting their source at import time.")
    parser.add_argument("--version", action="version", version=f"astpatch {__version__}")
    commands = parser.add_commands("command", "COMMAND")

    def add(name: str, help: str, rules: bool = True) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        if rules:
            sub.add_argument("--rules", action="append", default=[], metavar="PATH",
                             help="also load rules from this rule file or directory (repeatable)")
        return sub

    def python(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--python", metavar="PATH", help="inspect the environment of this Python interpreter (or "
                         "virtual environment directory); default: the active virtual environment, else astpatch's own")

    sub = add("list", "list every known rule and its outcome in this environment")
    sub.add_argument("--json", action="store_true", help="machine-readable output")
    python(sub)
    sub.set_defaults(run=cmd_list)

    sub = add("diff", "show the diff between the installed source and what astpatch executes")
    sub.add_argument("names", nargs="*", metavar="RULE-ID|MODULE", help="limit to these rules or modules")
    sub.add_argument("--stat", action="store_true", help="one summary line per module")
    sub.add_argument("--json", action="store_true", help="machine-readable output")
    sub.add_argument("--color", choices=("auto", "always", "never"), default="auto", help="colour the diff (default: on a terminal)")
    python(sub)
    sub.set_defaults(run=cmd_diff)

    sub = add("check", "check each rule against installed or given sources (wheels, sdists, directories, files)")
    sub.add_argument("--against", action="append", metavar="PATH",
                     help="a wheel, sdist, site-packages or checkout directory, or .py file (repeatable; default: installed)")
    sub.add_argument("--rule", action="append", metavar="ID", help="check only this rule (repeatable)")
    sub.add_argument("--dist-version", action="append", metavar="VERSION",
                     help="the distribution version to assume (once, or once per --against)")
    sub.add_argument("--json", action="store_true", help="machine-readable output")
    sub.add_argument("-v", "--verbose", action="store_true", help="give the reason for every result")
    python(sub)
    sub.set_defaults(run=cmd_check)

    _run.configure(add("run", "run a program with astpatch installed in every Python process it starts"))

    sub = add("new", "write one rule from an upstream fix's unified diff")
    sub.add_argument("--from-diff", required=True, metavar="FILE", help="the unified diff (a pull request's .diff)")
    sub.add_argument("--id", metavar="ID", help="the rule id (default: from the first module and function)")
    sub.add_argument("--gate", metavar="SPEC", help="a version gate such as 'torch>=2.10'")
    sub.add_argument("--fixed-in", metavar="VERSION",
                     help="the first release with the fix: the gate stops below it (e.g. 2.11.0 adds '<2.11.0')")
    sub.add_argument("--only", action="append", metavar="PATH",
                     help="use only this file of the diff (repeatable; default: every installed module it changes)")
    sub.add_argument("--upstream", metavar="TEXT", help="where upstream fixed it (default: the diff's name)")
    sub.add_argument("--source", metavar="PATH", help="where to read the module (default: installed)")
    sub.add_argument("-o", "--output", metavar="DIR", help="write the rule file into DIR (default: print it)")
    python(sub)
    sub.set_defaults(run=cmd_new)

    add_edit_commands(add)  # edit, commit

    cache = add("cache", "the code cache: dir, info, clear, prune, warm")
    assert isinstance(cache, _Parser)
    cache_commands = cache.add_commands("cache_command", "ACTION")
    directory = cache_commands.add_parser("dir", help="print the cache directory", description="print the cache directory")
    directory.add_argument("--json", action="store_true", help="machine-readable output")
    info = cache_commands.add_parser("info", help="what the cache holds", description="what the cache holds")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    clear = cache_commands.add_parser("clear", help="remove every entry", description="remove every entry "
                                      "(astpatch's files only: other files in the directory are left alone)")
    clear.add_argument("--json", action="store_true", help="machine-readable output")
    prune = cache_commands.add_parser(
        "prune", help="remove what is no longer needed: orphaned temporary files, old and least recently used entries",
        description="remove the temporary files of writers that died, the entries unused for --older-than days, "
                    "then the least recently used entries beyond --max-size (astpatch's files only)")
    prune.add_argument("--max-size", metavar="SIZE", help="the most the cache may take, in bytes or with K, M or G "
                       "(default: 256M, the bound every process keeps after its first write)")
    prune.add_argument("--older-than", type=float, metavar="DAYS", help="also remove entries unused for more than DAYS days")
    prune.add_argument("--json", action="store_true", help="machine-readable output")
    warm = cache_commands.add_parser("warm", help="rewrite and store every targeted module now (e.g. while building an "
                                     "image)", description="rewrite and store every targeted module now (e.g. while "
                                     "building an image)")
    # Its own destination: a subcommand's defaults would replace what `cache --rules X warm` gave.
    warm.add_argument("--rules", action="append", default=[], dest="warm_rules", metavar="PATH",
                      help="also load rules from this rule file or directory (repeatable)")
    warm.add_argument("--json", action="store_true", help="machine-readable output")
    cache.set_defaults(run=cmd_cache)
    return parser


def _one_line(message, category, filename, lineno, file=None, line=None):  # type: ignore[no-untyped-def]
    """astpatch's warnings as one line on stderr: in a command, they are about the user's input."""
    print(message, file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    own, program = _run.split(sys.argv[1:] if argv is None else list(argv))
    args = build_parser().parse_args(own)
    if args.command == "run":  # the program keeps Python's own warning display
        args.program = program
        return _call(args)
    with warnings.catch_warnings():
        warnings.simplefilter("default", AstpatchWarning)
        warnings.showwarning = _one_line
        return _call(args)


def _call(args: argparse.Namespace) -> int:
    try:
        with project_settings(export=args.command == "run"):
            return int(args.run(args))
    except UsageError as error:
        print(f"astpatch: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
