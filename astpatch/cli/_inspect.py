"""`astpatch list`, `diff` and `check`: what the rules do, to the installed sources or to others."""

from __future__ import annotations

import argparse
import json
import os
import sys

from .._base import outcomes as oc
from .._inspect.evaluate import evaluate, outcomes_by_rule, parts_by_rule
from .._inspect.verdicts import CONFLICTS, OUTSIDE_GATE, WORDS, verdicts
from .._inspect.workcopy import unified
from ._common import UsageError, environment, installed_sources, load_rules, status

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .._model.rule import Change, Rule


def cmd_list(args: argparse.Namespace) -> int:
    env = environment(args.python)
    rules = load_rules(args.rules)
    outcomes = outcomes_by_rule(evaluate(rules, installed_sources(env)))
    rows = [{
        "id": r.id, "summary": r.summary, "module": r.module, "target": r.target, "gate": r.gate,
        "upstream": r.upstream, "written_for": r.written_for, "origin": r.origin, "edit": r.edit.describe(),
        "outcome": outcomes[r.id].status, "reason": outcomes[r.id].reason, "version": outcomes[r.id].version,
        **({"key_carries": _carried(r, rules, outcomes)} if r.key_package is not None else {}),
        "environment": env.as_json(),
    } for r in rules]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        _name(env)
        for row in rows:
            print(f"{row['id']}: {oc.DESCRIPTIONS[str(row['outcome'])]}")
            print(f"  {row['summary']}")
            print(f"  target:   {row['module']}:{row['target']}")
            print(f"  gate:     {row['gate'] or '(none)'}")
            print(f"  upstream: {row['upstream']}")
            if row["written_for"]:
                print(f"  for:      {row['written_for']} (the release it was written for)")
            print(f"  why:      {row['reason']}")
            if "key_carries" in row:
                carried = ", ".join(row["key_carries"])  # type: ignore[arg-type]
                print(f"  key:      carries {carried}" if carried else "  key:      upstream's own: no rule applies there")
        if not rows:
            print("no rules")
    return status(any(row["outcome"] in oc.PROBLEMS for row in rows), rules)


def _carried(key_rule: Rule, rules: list[Rule], outcomes: dict[str, oc.Outcome]) -> list[str]:
    """The rules whose fingerprints a key rule's key carries: those applied to its package."""
    package = key_rule.key_package or ""
    return [r.id for r in rules if r.key_package is None and outcomes[r.id].status == oc.APPLIED
            and any(m == package or m.startswith(package + ".") for m in r.modules)]


def colour_line(line: str) -> str:
    """A line of a unified diff, coloured for a terminal."""
    for prefix, code in (("+++", "1"), ("---", "1"), ("@@", "36"), ("+", "32"), ("-", "31")):
        if line.startswith(prefix):
            return f"\033[{code}m{line}\033[0m"
    return line


def use_colour(choice: str) -> bool:
    """--color always or never as given; auto follows the conventions: NO_COLOR (set, not empty) wins, then
    FORCE_COLOR (set, not empty, not 0) colours even a pipe, then TERM=dumb or a pipe has none."""
    if choice != "auto":
        return choice == "always"
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR", "") not in ("", "0"):
        return True
    return os.environ.get("TERM") != "dumb" and sys.stdout.isatty()


def _name(env: Any) -> None:
    """Name the environment inspected in text output when it is not astpatch's own (--python, VIRTUAL_ENV)."""
    if env is not None and env.other:
        print(f"environment: {env.describe()}")


def cmd_diff(args: argparse.Namespace) -> int:
    env = environment(args.python)
    rules = load_rules(args.rules, args.names)
    colour = use_colour(args.color)
    results: list[dict[str, Any]] = []
    for module in evaluate(rules, installed_sources(env)):
        if module.path is None or module.before == module.after:
            continue
        diff = unified(module.before, module.after, f"{module.path} (upstream)", f"{module.path} (astpatch)")
        lines = diff.splitlines()
        added = sum(1 for d in lines if d.startswith("+") and not d.startswith("+++"))
        removed = sum(1 for d in lines if d.startswith("-") and not d.startswith("---"))
        results.append({"module": module.module, "path": module.path, "added": added, "removed": removed,
                         "rules": [r.id for r, o in module.outcomes if o.status == oc.APPLIED], "diff": diff,
                         "environment": env.as_json()})
    if not args.json:
        _name(env)
    if args.json:
        print(json.dumps(results, indent=2))
    elif args.stat:
        for r in results:
            print(f"{r['module']}: +{r['added']} -{r['removed']}  {r['path']}  ({', '.join(r['rules'])})")
        print(f"{len(results)} module(s) changed")
    else:
        for r in results:
            for line in r["diff"].splitlines():
                print(colour_line(line) if colour else line)
    return status(0, rules)


def cmd_check(args: argparse.Namespace) -> int:
    from .._inspect.sources import SourceError, open_sources

    versions = [_valid_version(v) for v in args.dist_version or []]
    if args.python and args.against:
        raise UsageError("--python names the environment to check when no --against is given: give one or the other")
    env = environment(args.python) if not args.against else None
    rules = load_rules(args.rules, args.rule)
    if not rules:
        raise UsageError("no rules to check")
    targets = args.against or [None]
    if len(versions) > 1 and len(versions) != len(targets):
        raise UsageError(f"give --dist-version once, or once per --against ({len(targets)})")
    columns: list[dict[str, Any]] = []
    for i, path in enumerate(targets):
        try:
            sources = installed_sources(env) if path is None else open_sources(path)
        except SourceError as error:
            raise UsageError(str(error)) from None
        override = versions[i] if len(versions) > 1 else (versions[0] if versions else None)
        try:
            reports = evaluate(rules, sources, override)
            outcomes, parts = outcomes_by_rule(reports), parts_by_rule(reports)
        except SourceError as error:
            raise UsageError(str(error)) from None
        if path is not None and override is None:
            outcomes = _unknown_versions(rules, sources, outcomes)
        gated = [r.gate_distribution for r in rules if r.gate_distribution]
        version = override or (sources.version(gated[0]) if gated else None)
        label = f"{gated[0]} {version}" if gated and version else sources.label
        found, without_gate = verdicts(rules, sources, outcomes, override)
        columns.append({"against": path or "installed", "label": label, "version": version, "outcomes": outcomes,
                        "parts": parts, "verdicts": found, "without_gate": without_gate})

    by_id = {r.id: r for r in rules}
    stale = [(r.id, c["label"]) for c in columns for r in rules if c["outcomes"][r.id].status in oc.PROBLEMS]
    if args.json:
        print(json.dumps({
            "environment": env.as_json() if env is not None else None,
            "rules": [r.id for r in rules],
            "columns": [{"against": c["against"], "label": c["label"], "version": c["version"],
                         "results": {rid: {"outcome": o.status, "verdict": c["verdicts"][rid], "version": o.version,
                                           "reason": o.reason,
                                           **_without_gate(c["without_gate"].get(rid)),
                                           "parts": [{"part": change.where, "outcome": p.status, "reason": p.reason}
                                                     for change, p in _in_order(by_id[rid], c["parts"].get(rid, []))]}
                                     for rid, o in c["outcomes"].items()}}
                        for c in columns],
            "fixed_upstream_in": {r.id: _first_fixed(r.id, columns) for r in rules},
            "written_for": {r.id: r.written_for for r in rules},
            "stale": [{"rule": rid, "against": label} for rid, label in stale],
        }, indent=2))
    else:
        _name(env)
        width = max(len(r.id) for r in rules)
        cells = [max(len(c["label"]), 15) for c in columns]
        print((f"{'rule':<{width}}  " + "  ".join(f"{c['label']:<{w}}" for c, w in zip(columns, cells))).rstrip())
        for r in rules:
            print((f"{r.id:<{width}}  " + "  ".join(f"{c['outcomes'][r.id].status:<{w}}" for c, w in zip(columns, cells))).rstrip())
        _print_verdicts(rules, columns, width)
        conflicts = {(c["label"], r.id) for c in columns for r in rules if c["verdicts"][r.id] == CONFLICTS}
        if args.verbose or stale or conflicts:
            print()
            for c in columns:
                for r in rules:
                    o = c["outcomes"][r.id]
                    if args.verbose or o.status in oc.PROBLEMS or (c["label"], r.id) in conflicts:
                        print(f"{r.id} @ {c['label']}: {o.status}: {o.reason}")
                        if r.id in c["without_gate"]:
                            print(f"  without its gate: {c['without_gate'][r.id].status}: {c['without_gate'][r.id].reason}")
                        listed = _in_order(r, c["parts"].get(r.id, []))
                        for change, p in listed if len(listed) > 1 else ():
                            print(f"  {change.where}: {p.status}: {p.reason}")
        fixed = [(r.id, _first_fixed(r.id, columns)) for r in rules if len(columns) > 1]
        if any(label for _, label in fixed):
            print()
            for rule_id, label in fixed:
                if label:
                    print(f"{rule_id}: already fixed upstream from {label} on")
        if stale:
            print(f"\n{len(stale)} stale: a rule its gate selects cannot do its job; update the rule or its gate.")
    return status(len(stale), rules)


def _print_verdicts(rules: list[Rule], columns: list[dict[str, Any]], width: int) -> None:
    """The verdict table: each rule's verdict on each source, beside the release it was written for
    (and the rule's distribution's version there, where the column's label does not say it)."""
    written = [r.written_for or "-" for r in rules]
    first = max(len("written for"), *(len(w) for w in written))
    rows = [[_verdict_cell(r, c) for c in columns] for r in rules]
    cells = [max(len(c["label"]), *(len(row[i]) for row in rows)) for i, c in enumerate(columns)]
    print()
    print((f"{'verdict':<{width}}  {'written for':<{first}}  "
           + "  ".join(f"{c['label']:<{w}}" for c, w in zip(columns, cells))).rstrip())
    for r, w, row in zip(rules, written, rows):
        print((f"{r.id:<{width}}  {w:<{first}}  " + "  ".join(f"{cell:<{n}}" for cell, n in zip(row, cells))).rstrip())
    for rule_id in [r.id for r in rules if any(c["verdicts"][r.id] == CONFLICTS for c in columns)]:
        print(f"re-edit {rule_id}: astpatch edit --rule {rule_id}, change the copy, then astpatch commit DIR")
    for r in rules:  # after an upgrade past its gate, a rule does nothing at import, silently: say so here
        if any(c["against"] == "installed" and c["verdicts"][r.id] == OUTSIDE_GATE and r.id in c["without_gate"]
               for c in columns):
            print(f"{r.id} does nothing on the installed release (outside its gate {r.gate}) though its edit still "
                  f"applies: if it is still needed, astpatch edit --rule {r.id}, then astpatch commit DIR to gate it "
                  "to this release")


def _verdict_cell(rule: Rule, column: dict[str, Any]) -> str:
    word = WORDS[column["verdicts"][rule.id]]
    version = column["outcomes"][rule.id].version
    named = f"{rule.gate_distribution} {version}"
    return f"{word} ({named})" if version and rule.gate_distribution and column["label"] != named else word


def _without_gate(outcome: oc.Outcome | None) -> dict[str, Any]:
    """For a rule outside its gate, what its edit does there without the gate (its verdict's ground)."""
    return {} if outcome is None else {"without_gate": {"outcome": outcome.status, "reason": outcome.reason}}


def _valid_version(text: str) -> str:
    from packaging.version import InvalidVersion, Version

    try:
        Version(text)
    except InvalidVersion:
        raise UsageError(f"--dist-version must be a version (PEP 440), such as 2.10.0: {text!r}") from None
    return text


def _unknown_versions(rules: list[Any], sources: Any, outcomes: dict[str, oc.Outcome]) -> dict[str, oc.Outcome]:
    """A gate checked against sources without the distribution's metadata (a single .py file, a
    checkout) has no version to compare: say so, not that the distribution is not installed."""
    from .._inspect.sources import SingleFile

    found = dict(outcomes)
    for rule in rules:
        o = found[rule.id]
        distribution = rule.gate_distribution
        if distribution is None or o.status != oc.NOT_APPLICABLE or sources.version(distribution) is not None:
            continue
        why = ("a single file has no metadata" if isinstance(sources, SingleFile)
               else f"it has no {distribution} metadata")
        found[rule.id] = oc.Outcome(o.rule_id, o.module, o.status, f"the version of {distribution} in {sources.label} "
                                    f"is unknown ({why}), so the gate {rule.gate} cannot be checked; "
                                    "give it with --dist-version", version=o.version)
    return found


def _first_fixed(rule_id: str, columns: list[dict[str, Any]]) -> str | None:
    """The first source, in the order given, from which on the rule is already fixed upstream."""
    first = None
    for column in columns:
        if column["outcomes"][rule_id].status == oc.ALREADY_FIXED:
            first = first or column["label"]
        else:
            first = None
    return first


def _in_order(rule: Rule, parts: list[tuple[Change, oc.Outcome]]) -> list[tuple[Change, oc.Outcome]]:
    """A rule's (change, outcome) parts in the order the rule lists its changes."""
    return sorted(parts, key=lambda part: rule.changes.index(part[0]))
