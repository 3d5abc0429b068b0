"""The `astpatch` command line.

Exit status: 0 success, 1 a finding (a stale rule, a check that failed), 2 bad usage. Errors in
what the user gave (a path, a rule id, a diff) are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import difflib
import functools
import json
import os
import sys

from . import __version__
from . import report as rp

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

EXIT_OK, EXIT_FINDING, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"astpatch: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def load_rules(extra: list[str], only: list[str] | None = None) -> list:
    """The known rules (shipped, ASTPATCH_RULES, --rules), less those ASTPATCH_DISABLE turns off."""
    from . import config
    from .rulefiles import builtin_rules_dir
    from .rulefiles import load_rules as load

    for path in extra:
        if not os.path.exists(path):
            raise UsageError(f"rule path {path} does not exist")
    from .plugins import discover

    problems: list[str] = []
    # Rules from other distributions (entry points) come last; load_rules keeps the first of an id.
    plugin_rules = discover(problems.append)[1]
    rules = load([builtin_rules_dir(), *config.rule_paths(), *extra, *plugin_rules], problems.append)
    for message in problems:
        print(message, file=sys.stderr)
    disabled = config.disabled()
    rules = [r for r in rules if not disabled.everything and r.id not in disabled.rule_ids]
    return select(rules, only) if only else rules


def select(rules: list, names: list[str]) -> list:
    """The rules named by id or by module, in the order named."""
    chosen: list = []
    for name in names:
        matched = [r for r in rules if name in (r.id, r.module)]
        if not matched:
            known = ", ".join(sorted(r.id for r in rules)) or "none"
            raise UsageError(f"no rule has the id or module {name!r} (known rule ids: {known})")
        chosen.extend(r for r in matched if r not in chosen)
    return chosen


def _installed():  # type: ignore[no-untyped-def]
    from .sources import Installed

    return Installed()


# -- list ---------------------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    rules = load_rules(args.rules)
    states = {rule.id: (state, o) for m in rp.evaluate(rules, _installed()) for rule, state, o in m.states}
    rows = [{
        "id": r.id, "summary": r.summary, "module": r.module, "target": r.target, "gate": r.gate,
        "upstream": r.upstream, "origin": r.origin, "edit": r.edit.describe(),
        "state": states[r.id][0], "reason": states[r.id][1].reason, "version": states[r.id][1].version,
    } for r in rules]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            print(f"{row['id']}: {rp.DESCRIPTIONS[row['state']]}")
            print(f"  {row['summary']}")
            print(f"  target:   {row['module']}:{row['target']}")
            print(f"  gate:     {row['gate'] or '(none)'}")
            print(f"  upstream: {row['upstream']}")
            print(f"  why:      {row['reason']}")
        if not rows:
            print("no rules")
    return EXIT_FINDING if any(row["state"] in rp.STALE for row in rows) else EXIT_OK


# -- diff ---------------------------------------------------------------------------------------


def _colour(line: str) -> str:
    for prefix, code in (("+++", "1"), ("---", "1"), ("@@", "36"), ("+", "32"), ("-", "31")):
        if line.startswith(prefix):
            return f"\033[{code}m{line}\033[0m"
    return line


def cmd_diff(args: argparse.Namespace) -> int:
    rules = load_rules(args.rules, args.names)
    colour = args.color == "always" or (args.color == "auto" and sys.stdout.isatty() and not os.environ.get("NO_COLOR"))
    results: list[dict[str, Any]] = []
    for module in rp.evaluate(rules, _installed()):
        if module.path is None or module.before == module.after:
            continue
        diff = list(difflib.unified_diff(module.before, module.after, f"{module.path} (upstream)",
                                         f"{module.path} (astpatch)"))
        added = sum(1 for d in diff if d.startswith("+") and not d.startswith("+++"))
        removed = sum(1 for d in diff if d.startswith("-") and not d.startswith("---"))
        results.append({"module": module.module, "path": module.path, "added": added, "removed": removed,
                         "rules": [r.id for r, state, _ in module.states if state == rp.APPLIES],
                         "diff": "".join(d if d.endswith("\n") else d + "\n\\ No newline at end of file\n" for d in diff)})
    if args.json:
        print(json.dumps(results, indent=2))
    elif args.stat:
        for r in results:
            print(f"{r['module']}: +{r['added']} -{r['removed']}  {r['path']}  ({', '.join(r['rules'])})")
        print(f"{len(results)} module(s) changed")
    else:
        for r in results:
            for line in r["diff"].splitlines():
                print(_colour(line) if colour else line)
    return EXIT_OK


# -- check --------------------------------------------------------------------------------------


def cmd_check(args: argparse.Namespace) -> int:
    from .sources import SourceError, open_sources

    rules = load_rules(args.rules, args.rule)
    if not rules:
        raise UsageError("no rules to check")
    targets = args.against or [None]
    versions = args.dist_version or []
    if len(versions) > 1 and len(versions) != len(targets):
        raise UsageError(f"give --dist-version once, or once per --against ({len(targets)})")
    columns: list[dict[str, Any]] = []
    for i, path in enumerate(targets):
        try:
            sources = _installed() if path is None else open_sources(path)
        except SourceError as error:
            raise UsageError(str(error)) from None
        override = versions[i] if len(versions) > 1 else (versions[0] if versions else None)
        try:
            reports = rp.evaluate(rules, sources, override)
        except SourceError as error:
            raise UsageError(str(error)) from None
        states = {rule.id: (state, o) for m in reports for rule, state, o in m.states}
        gated = [r.gate_distribution for r in rules if r.gate_distribution]
        version = override or (sources.version(gated[0]) if gated else None)
        label = f"{gated[0]} {version}" if gated and version else sources.label
        columns.append({"against": path or "installed", "label": label, "version": version, "states": states})

    stale = [(r.id, c["label"]) for c in columns for r in rules if c["states"][r.id][0] in rp.STALE]
    if args.json:
        print(json.dumps({
            "rules": [r.id for r in rules],
            "columns": [{"against": c["against"], "label": c["label"], "version": c["version"],
                         "results": {rid: {"state": s, "reason": o.reason} for rid, (s, o) in c["states"].items()}}
                        for c in columns],
            "stale": [{"rule": rid, "against": label} for rid, label in stale],
        }, indent=2))
    else:
        width = max(len(r.id) for r in rules)
        cells = [max(len(c["label"]), 14) for c in columns]
        print((f"{'rule':<{width}}  " + "  ".join(f"{c['label']:<{w}}" for c, w in zip(columns, cells))).rstrip())
        for r in rules:
            print((f"{r.id:<{width}}  " + "  ".join(f"{c['states'][r.id][0]:<{w}}" for c, w in zip(columns, cells))).rstrip())
        if args.verbose or stale:
            print()
            for c in columns:
                for r in rules:
                    state, o = c["states"][r.id]
                    if args.verbose or state in rp.STALE:
                        print(f"{r.id} @ {c['label']}: {state}: {o.reason}")
        if stale:
            print(f"\n{len(stale)} stale: a rule its gate selects cannot do its job; update the rule or its gate.")
    return EXIT_FINDING if stale else EXIT_OK


# -- new ----------------------------------------------------------------------------------------


def cmd_new(args: argparse.Namespace) -> int:
    from .fromdiff import DiffError, cut, parse, rule_file
    from .rule import gate_problem, valid_rule_id
    from .sources import SourceError, open_sources

    try:
        with open(args.from_diff, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError as error:
        raise UsageError(f"cannot read {args.from_diff}: {error.strerror or error}") from None
    if args.id and not valid_rule_id(args.id):
        raise UsageError(f"--id {args.id!r} must be lower case letters, digits, '.', '_' and '-'")
    if args.gate and gate_problem(args.gate):
        raise UsageError(f"--gate {args.gate!r}: {gate_problem(args.gate)}; write it like 'torch>=2.10'")
    try:
        sources = _installed() if args.source is None else open_sources(args.source)
        entries = cut(parse(text), sources)
    except (DiffError, SourceError, SyntaxError) as error:
        raise UsageError(f"{args.from_diff}: {error}") from None
    upstream = args.upstream or f"the upstream diff {os.path.basename(args.from_diff)}"
    ids, content = rule_file(entries, rule_id=args.id, gate=args.gate, upstream=upstream, diff_name=os.path.basename(args.from_diff))
    if args.output is None:
        sys.stdout.write(content)
        return EXIT_OK
    os.makedirs(args.output, exist_ok=True)
    name = (args.id or ids[0]).replace("-", "_").replace(".", "_") + ".py"
    path = os.path.join(args.output, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(content)
    print(f"wrote {path}: {', '.join(ids)}")
    return EXIT_OK


# -- run ----------------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    from .runner import run_program

    return run_program(args.program, rule_ids=args.rule, strict=args.strict, rule_paths=args.rules)


# -- cache --------------------------------------------------------------------------------------


def _cache_directory() -> str | None:
    from . import config

    return config.cache_directory(None)


def cmd_cache(args: argparse.Namespace) -> int:
    from .cache import entry_files, read_entry

    directory = _cache_directory()
    if directory is None:
        print("the cache is off (ASTPATCH_NO_CACHE=1)" if args.cache_command != "dir" else "off")
        return EXIT_OK
    if args.cache_command == "dir":
        print(directory)
        return EXIT_OK
    if args.cache_command == "clear":
        removed = 0
        for path in entry_files(directory):
            try:
                os.unlink(path)
                removed += 1
            except IsADirectoryError:
                import shutil

                shutil.rmtree(path, ignore_errors=True)
                removed += 1
            except OSError as error:
                print(f"astpatch: cannot remove {path}: {error.strerror or error}", file=sys.stderr)
        print(f"removed {removed} entries from {directory}")
        return EXIT_OK
    if args.cache_command == "info":
        files = entry_files(directory)
        rows = []
        for path in files:
            if path.endswith("entry-points.index"):
                continue  # the index of other distributions' rules (astpatch.plugins), not code
            data = read_entry(path) if os.path.isfile(path) else "not a regular file"
            row: dict = {"file": os.path.basename(path), "size": os.path.getsize(path) if os.path.isfile(path) else 0}
            if isinstance(data, str):
                row["problem"] = data
            else:
                key, outcomes = data
                row.update(module=key[4], path=key[5], astpatch=key[0], outcomes=[{"rule": o[0], "outcome": o[2]} for o in outcomes])
            rows.append(row)
        if args.json:
            print(json.dumps({"directory": directory, "entries": rows}, indent=2))
        else:
            print(f"{directory}: {len(rows)} entries, {sum(r['size'] for r in rows)} bytes")
            for r in rows:
                what = r.get("problem") or ", ".join(f"{o['rule']}: {o['outcome']}" for o in r["outcomes"])
                print(f"  {r.get('module', '?')}  {r['size']} bytes  {what}")
        return EXIT_OK
    # warm
    return _warm(args)


def _warm(args: argparse.Namespace) -> int:
    from .cache import Cache
    from .installation import Installation
    from .loader import build
    from .sources import SourceNotFound, locate

    rules = load_rules(args.rules)
    installation = Installation(rules, Cache(_cache_directory()), strict=False, active=False)
    problems = 0
    for module in sorted(installation.targets):
        try:
            path = locate(module)
        except SourceNotFound as missing:
            print(f"{module}: skipped: {missing}")
            continue
        with open(path, "rb") as f:
            source = f.read()
        from importlib.machinery import SourceFileLoader

        loader = SourceFileLoader(module, path)
        _code, outcomes, _spans = build(module, path, source, installation.rules_for(module), installation,
                                        upstream=functools.partial(loader.get_code, module))
        for o in outcomes:
            print(f"{module}: {o.rule_id}: {o.status}{' (already cached)' if o.from_cache else ''}")
            problems += o.status in ("target-missing", "failed")
    return EXIT_FINDING if problems else EXIT_OK


# -- the parser ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="astpatch", description="Fix bugs in installed packages by rewriting their source at import time.")
    parser.add_argument("--version", action="version", version=f"astpatch {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    def add(name: str, help: str, rules: bool = True) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        if rules:
            sub.add_argument("--rules", action="append", default=[], metavar="PATH",
                             help="also load rules from this rule file or directory (repeatable)")
        return sub

    sub = add("list", "list every known rule and its outcome in this environment")
    sub.add_argument("--json", action="store_true", help="machine-readable output")
    sub.set_defaults(run=cmd_list)

    sub = add("diff", "show the diff between the installed source and what astpatch executes")
    sub.add_argument("names", nargs="*", metavar="RULE-ID|MODULE", help="limit to these rules or modules")
    sub.add_argument("--stat", action="store_true", help="one summary line per module")
    sub.add_argument("--json", action="store_true", help="machine-readable output")
    sub.add_argument("--color", choices=("auto", "always", "never"), default="auto", help="colour the diff (default: on a terminal)")
    sub.set_defaults(run=cmd_diff)

    sub = add("check", "check each rule against installed or given sources (wheels, sdists, directories, files)")
    sub.add_argument("--against", action="append", metavar="PATH",
                     help="a wheel, sdist, site-packages or checkout directory, or .py file (repeatable; default: installed)")
    sub.add_argument("--rule", action="append", metavar="ID", help="check only this rule (repeatable)")
    sub.add_argument("--dist-version", action="append", metavar="VERSION",
                     help="the distribution version to assume (once, or once per --against)")
    sub.add_argument("--json", action="store_true", help="machine-readable output")
    sub.add_argument("-v", "--verbose", action="store_true", help="give the reason for every result")
    sub.set_defaults(run=cmd_check)

    sub = add("run", "run a Python program with astpatch installed first")
    sub.add_argument("--rule", action="append", metavar="ID", help="apply only this rule (repeatable)")
    sub.add_argument("--strict", action="store_true", help="a rule that cannot do its job raises")
    sub.add_argument("program", nargs=argparse.REMAINDER, metavar="-- script.py | -m module | -c code  [args]")
    sub.set_defaults(run=cmd_run)

    sub = add("new", "write a rule from an upstream fix's unified diff")
    sub.add_argument("--from-diff", required=True, metavar="FILE", help="the unified diff (a pull request's .diff)")
    sub.add_argument("--id", metavar="ID", help="the rule id (default: from the module and function)")
    sub.add_argument("--gate", metavar="SPEC", help="a version gate such as 'torch>=2.10'")
    sub.add_argument("--upstream", metavar="TEXT", help="where upstream fixed it (default: the diff's name)")
    sub.add_argument("--source", metavar="PATH", help="where to read the module (default: installed)")
    sub.add_argument("-o", "--output", metavar="DIR", help="write the rule file into DIR (default: print it)")
    sub.set_defaults(run=cmd_new)

    cache = add("cache", "the code cache: dir, info, clear, warm")
    cache_commands = cache.add_subparsers(dest="cache_command", metavar="ACTION", parser_class=_Parser)
    cache_commands.required = True
    cache_commands.add_parser("dir", help="print the cache directory", description="print the cache directory")
    info = cache_commands.add_parser("info", help="what the cache holds", description="what the cache holds")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    cache_commands.add_parser("clear", help="remove every entry", description="remove every entry")
    cache_commands.add_parser("warm", help="rewrite and store every targeted module now (e.g. while building an image)",
                              description="rewrite and store every targeted module now (e.g. while building an image)")
    cache.set_defaults(run=cmd_cache)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
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
