"""The `astpatch` command line.

Exit status: 0 success, 1 a finding (a rule that cannot do its job), 2 bad usage.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys

from . import __version__
from . import outcome as oc

EXIT_OK, EXIT_FINDING, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"astpatch: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _load_rules(extra: list[str]) -> list:
    from . import config
    from .rulefiles import builtin_rules_dir, load_rules

    problems: list[str] = []
    rules = load_rules([builtin_rules_dir(), *config.rule_paths(), *extra], problems.append)
    for message in problems:
        print(message, file=sys.stderr)
    disabled = config.disabled()
    return [r for r in rules if not disabled.everything and r.id not in disabled.rule_ids]


def _select(rules: list, names: list[str]) -> list:
    """Rules named by id or by module; SystemExit(2) for a name that matches nothing."""
    if not names:
        return rules
    chosen = []
    for name in names:
        matched = [r for r in rules if name in (r.id, r.module)]
        if not matched:
            known = ", ".join(sorted(r.id for r in rules)) or "none"
            print(f"astpatch: no rule has the id or module {name!r} (known rule ids: {known})", file=sys.stderr)
            raise SystemExit(EXIT_USAGE)
        chosen.extend(r for r in matched if r not in chosen)
    return chosen


class ModuleState:
    """A module's installed source and what the rules make of it, computed afresh."""

    def __init__(self, module: str, rules: list) -> None:
        from .distributions import installed_version
        from .rewrite import rewrite
        from .sources import SourceNotFound, locate, read
        from .spans import patched_lines, split_lines

        self.module = module
        self.path: str | None = None
        self.before: list[str] = []
        self.after: list[str] = []
        try:
            self.path = locate(module)
        except SourceNotFound as missing:
            self.outcomes = [oc.Outcome(r.id, module, oc.NOT_APPLICABLE, f"target module not installed: {missing}")
                             for r in rules]
            return
        text = read(self.path)
        versions = {r.gate_distribution: installed_version(r.gate_distribution) for r in rules if r.gate_distribution}
        result = rewrite(module, self.path, text, rules, versions)
        self.outcomes = result.outcomes
        self.before = split_lines(text)
        self.after = patched_lines(self.before, result.spans)


def _states(rules: list) -> list[ModuleState]:
    modules: dict[str, list] = {}
    for rule in rules:
        modules.setdefault(rule.module, []).append(rule)
    return [ModuleState(m, rs) for m, rs in modules.items()]


def _colour(line: str, enabled: bool) -> str:
    if not enabled:
        return line
    if line.startswith(("+++", "---")):
        return f"\033[1m{line}\033[0m"
    if line.startswith("@@"):
        return f"\033[36m{line}\033[0m"
    if line.startswith("+"):
        return f"\033[32m{line}\033[0m"
    if line.startswith("-"):
        return f"\033[31m{line}\033[0m"
    return line


def cmd_diff(args: argparse.Namespace) -> int:
    rules = _select(_load_rules(args.rules), args.names)
    colour = args.color == "always" or (args.color == "auto" and sys.stdout.isatty() and not os.environ.get("NO_COLOR"))
    for state in _states(rules):
        if state.path is None or state.before == state.after:
            continue
        diff = list(difflib.unified_diff(state.before, state.after, f"{state.path} (upstream)",
                                         f"{state.path} (astpatch)"))
        if args.stat:
            added = sum(1 for d in diff if d.startswith("+") and not d.startswith("+++"))
            removed = sum(1 for d in diff if d.startswith("-") and not d.startswith("---"))
            print(f"{state.module}: {state.path}: +{added} -{removed}")
            continue
        for line in diff:
            if not line.endswith("\n"):
                line += "\n\\ No newline at end of file"
            print(_colour(line.rstrip("\n"), colour))
    return EXIT_OK


_DESCRIPTIONS = {
    oc.APPLIED: "would apply",
    oc.ALREADY_FIXED: "already fixed upstream",
    oc.NOT_APPLICABLE: "not applicable",
    oc.TARGET_MISSING: "target missing",
    oc.FAILED: "edit fails",
}


def cmd_list(args: argparse.Namespace) -> int:
    rules = _load_rules(args.rules)
    outcomes = {o.rule_id: o for state in _states(rules) for o in state.outcomes}
    rows = []
    for rule in rules:
        o = outcomes[rule.id]
        rows.append({"id": rule.id, "summary": rule.summary, "module": rule.module, "target": rule.target,
                     "gate": rule.gate, "upstream": rule.upstream, "origin": rule.origin,
                     "outcome": o.status, "reason": o.reason, "version": o.version})
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            print(f"{row['id']}: {_DESCRIPTIONS[row['outcome']]}")
            print(f"  {row['summary']}")
            print(f"  target:   {row['module']}:{row['target']}")
            print(f"  gate:     {row['gate'] or '(none)'}")
            print(f"  upstream: {row['upstream']}")
            print(f"  why:      {row['reason']}")
    return EXIT_FINDING if any(r["outcome"] in oc.PROBLEMS for r in rows) else EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="astpatch", description="Fix bugs in installed packages by rewriting their source at import time.")
    parser.add_argument("--version", action="version", version=f"astpatch {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    def add(name: str, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.add_argument("--rules", action="append", default=[], metavar="PATH",
                         help="also load rules from this rule file or directory (repeatable)")
        return sub

    diff = add("diff", "show the unified diff between the installed source and what astpatch executes")
    diff.add_argument("names", nargs="*", metavar="RULE-ID|MODULE")
    diff.add_argument("--stat", action="store_true", help="one summary line per module")
    diff.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    diff.set_defaults(run=cmd_diff)

    listing = add("list", "list every known rule and its outcome in this environment")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(run=cmd_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
