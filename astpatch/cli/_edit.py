"""`astpatch edit` and `astpatch commit`: edit a copy of installed modules, then write the rule for the change.

`edit` copies the installed source (or a rule's result) into a work directory and prints where;
the user changes it with any editor; `commit` writes one rule that makes the installed source into
the edited copy, gated to the installed release series, and shows its diff.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from .._inspect.workcopy import SourceChanged, WorkCopyError, default_rules_dir
from ._common import EXIT_FINDING, EXIT_OK, UsageError, configured_rule_paths, distribution_of, load_rules

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from .._inspect.workcopy import Edited
    from .._model.rule import Rule

UPSTREAM = "a local change, not reported upstream yet (say here where upstream fixes it: issue, pull request, release)"


def add_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    """The parsers of `edit` and `commit` (`add(name, help)` makes one with --rules)."""
    sub = add("edit", "copy installed modules (or a rule's result) into a work directory to edit them")
    sub.add_argument("names", nargs="*", metavar="MODULE|DISTRIBUTION",
                     help="a module (a package: every module under it), or a distribution's name: all its modules")
    sub.add_argument("--rule", metavar="ID", help="start from this rule's result; commit then rewrites its rule file")
    sub.add_argument("--dir", metavar="DIR", help="the work directory (default: a new temporary directory)")
    sub.add_argument("--force", action="store_true",
                     help="write into a non-empty --dir: the copy's files replace those of the same names")
    sub.add_argument("--json", action="store_true", help="machine-readable output")
    sub.set_defaults(run=cmd_edit)

    sub = add("commit", "write the rule that makes the installed source into the edited copy of `astpatch edit`")
    sub.add_argument("directory", metavar="DIR", help="the work directory `astpatch edit` made")
    sub.add_argument("-o", "--rules-dir", metavar="DIR", help="write the rule file into DIR (default: the first rule directory that "
                     "the project's [tool.astpatch] rules or ASTPATCH_RULES names, else astpatch_rules)")
    sub.add_argument("--id", metavar="ID", help="the rule id (default: from the first module and scope changed)")
    sub.add_argument("--gate", metavar="SPEC", help="the version gate (default: the installed release series, "
                     "such as 'torch>=2.10,<2.11')")
    sub.add_argument("--no-gate", action="store_true", help="no version gate: the rule acts on every version")
    sub.add_argument("--upstream", metavar="TEXT", help="where upstream fixed it (issue, pull request, release)")
    sub.add_argument("--summary", metavar="TEXT", help="the rule's one-line summary")
    sub.add_argument("--force", action="store_true", help="replace a rule file of the same name")
    sub.add_argument("--json", action="store_true", help="machine-readable output")
    sub.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                     help="colour the diff (default: on a terminal)")
    sub.set_defaults(run=cmd_commit)


def cmd_edit(args: argparse.Namespace) -> int:
    from .._base.metadata import installed_version
    from .._base.modulefiles import locate
    from .._inspect import workcopy

    if not args.names and not args.rule:
        raise UsageError("name a module, a distribution or --rule ID to edit")
    files: list[tuple[str, str]] = []
    texts: dict[str, str] = {}
    rule = None
    try:
        if args.rule:
            rule = _own_rule(args.rule, args.rules)
            texts = _result(rule)
            files += [(m, locate(m)) for m in rule.modules]
        for name in args.names:
            files += workcopy.files_of(name)
        files = list(dict(files).items())  # each module once, first place kept
        distribution = distribution_of(files[0][0].split(".")[0], installed=True)
        version = installed_version(distribution)
        directory = workcopy.make(args.dir, args.force, files, texts, distribution=distribution if version else None,
                                  version=version, rule=rule)
    except WorkCopyError as error:
        raise UsageError(str(error)) from None
    copies = [(module, os.path.join(directory, *workcopy.copy_path(module, path).split("/"))) for module, path in files]
    if args.json:
        print(json.dumps({"directory": directory, "distribution": distribution if version else None, "version": version,
                          "rule": rule.id if rule else None,
                          "files": [{"module": module, "path": path} for module, path in copies]}, indent=2))
        return EXIT_OK
    made_from = f" of {distribution} {version}" if version else ""
    print(directory)
    print(f"copied {len(files)} module(s){made_from}{f', as rule {rule.id} patches them' if rule else ''}:")
    for _, path in copies[:20]:
        print(f"  {path}")
    if len(files) > 20:
        print(f"  ... and {len(files) - 20} more")
    print(f"Edit them with any editor, then write the rule: astpatch commit {directory}")
    return EXIT_OK


def _own_rule(rule_id: str, extra: list[str]) -> Rule:
    """The rule `rule_id`, which must be the only rule of a rule file of the user's (commit rewrites it)."""
    from .._model.rulefiles import RuleFileError, builtin_rules_dir, load_rule_file

    default = default_rules_dir(configured_rule_paths())
    rules = load_rules(extra + ([default] if os.path.isdir(default) and default not in extra else []))
    rule = next((r for r in rules if r.id == rule_id), None)
    if rule is None:
        raise UsageError(f"no rule has the id {rule_id!r}; name its rule file or directory with --rules")
    origin = os.path.abspath(rule.origin)
    if not os.path.isfile(origin) or os.path.dirname(origin) == os.path.abspath(builtin_rules_dir()):
        raise UsageError(f"rule {rule_id} comes from {rule.origin}, not a rule file of yours, so commit could not "
                         "rewrite it; disable it (ASTPATCH_DISABLE) and make your own with astpatch edit MODULE")
    try:
        declared = load_rule_file(origin, check=False)
    except RuleFileError as error:
        raise UsageError(str(error)) from None
    if [r.id for r in declared] != [rule_id]:
        raise UsageError(f"{rule.origin} declares {len(declared)} rules; commit rewrites a rule's whole file, so move "
                         f"{rule_id} into a file of its own first")
    rule.origin = origin
    return rule


def _result(rule: Rule) -> dict[str, str]:
    """The text of each of the rule's modules as the rule patches it, its gate aside (it is re-edited
    for the installed release); where it does not apply, the installed text, and why on stderr."""
    from .._base import outcomes as oc
    from .._inspect.evaluate import evaluate
    from ._common import installed_sources

    texts = {}
    for report in evaluate([rule.without_gate()], installed_sources()):
        (_, outcome), = report.outcomes
        if outcome.status == oc.MODULE_MISSING:
            raise UsageError(f"rule {rule.id}: {outcome.reason}")
        if outcome.status != oc.APPLIED:
            print(f"rule {rule.id} is {outcome.status} on the installed {report.module} ({outcome.reason}): the copy "
                  "is the installed source; make the change there again", file=sys.stderr)
        texts[report.module] = "".join(report.after)
    return texts


def cmd_commit(args: argparse.Namespace) -> int:
    from .._base.store import write_atomically
    from .._inspect import workcopy
    from .._inspect.diffs import DiffError, parse
    from .._inspect.fromdiff import plan
    from .._inspect.rulewriter import default_id, file_name, rule_file, summary
    from .._model.rule import gate_problem, valid_rule_id
    from .._model.rulefiles import RuleFileError, load_rule_file
    from ._common import installed_sources
    from ._inspect import colour_line, use_colour

    if args.id and not valid_rule_id(args.id):
        raise UsageError(f"--id {args.id!r} must be lower case letters, digits, '.', '_' and '-'")
    if args.gate and gate_problem(args.gate):
        raise UsageError(f"--gate {args.gate!r}: {gate_problem(args.gate)}; write it like 'torch>=2.10,<2.11'")
    if args.gate and args.no_gate:
        raise UsageError("give --gate or --no-gate, not both")
    try:
        work = workcopy.edited(args.directory)
    except SourceChanged as error:
        print(f"astpatch: error: {error}", file=sys.stderr)
        return EXIT_FINDING
    except WorkCopyError as error:
        raise UsageError(str(error)) from None
    for note in work.notes:
        print(f"skipped {note}", file=sys.stderr)
    old = _old_rule(work.record, args)
    try:
        changes = plan(parse(work.diff), installed_sources(), skip=lambda path, why: print(f"skipped {path}: {why}",
                                                                                          file=sys.stderr))
    except DiffError as error:
        raise UsageError(f"{args.directory}: {error}") from None
    rule_id = args.id or (old.id if old else default_id(changes, "patch"))
    gate = None if args.no_gate else args.gate or _gate(work, old)
    modules = ", ".join(dict.fromkeys(c.module for c in changes))
    text = rule_file(changes, rule_id=rule_id, gate=gate, upstream=args.upstream or (old.upstream if old else UPSTREAM),
                     diff_name="an edited copy", written_for=work.written_for,
                     made_by=f"`astpatch commit` from an edited copy of {modules} ({work.written_for or 'installed'})",
                     summary_text=args.summary or (old.summary if old else summary(changes, "an edited copy")))
    default = default_rules_dir(configured_rule_paths())
    directory = args.rules_dir or default
    path = old.origin if old else os.path.join(directory, file_name(rule_id))
    if old is None and os.path.exists(path) and not args.force:
        raise UsageError(f"{path} exists; give another --id, or --force to replace it")
    _no_other(rule_id, path, args.rules + [d for d in dict.fromkeys((directory, default)) if os.path.isdir(d)])
    candidate = os.path.join(args.directory, ".astpatch-rule.py")
    try:
        write_atomically(candidate, text.encode("utf-8"))
        (rule,) = load_rule_file(candidate, check=False)
    except (OSError, RuleFileError, ValueError) as error:
        raise UsageError(f"cannot make the rule in {candidate}: {error}") from None
    problems, shown = workcopy.verify(rule, work)
    if problems:
        for problem in problems:
            print(f"astpatch: error: {problem}", file=sys.stderr)
        print(f"astpatch: error: the rule would not give the edited copy, so it is not written (it is in {candidate})",
              file=sys.stderr)
        return EXIT_FINDING
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        write_atomically(path, text.encode("utf-8"))
        os.unlink(candidate)
    except OSError as error:
        raise UsageError(f"cannot write {path}: {error.strerror or error}") from None
    if args.json:
        print(json.dumps({"file": path, "rule": rule_id, "gate": gate, "written_for": work.written_for,
                          "upstream": rule.upstream, "diff": shown}, indent=2))
        return EXIT_OK
    print(f"wrote {path}: {rule_id}")
    print(f"  gate:        {gate or '(none: every version)'}")
    print(f"  written for: {work.written_for or '(not recorded: no installed distribution provides it)'}")
    print(f"  upstream:    {rule.upstream}")
    colour = use_colour(args.color)
    for diff in shown:  # what `astpatch diff` shows for the rule
        for line in diff.splitlines():
            print(colour_line(line) if colour else line)
    print(f"Load it with --rules {os.path.dirname(path)} (astpatch run, diff, check), or "
          f"ASTPATCH_RULES={os.path.dirname(path)}; {args.directory} can be removed.")
    return EXIT_OK


def _old_rule(record: dict, args: argparse.Namespace) -> Rule | None:
    """The rule the copy started from (`edit --rule`), read again from its file; None for a new rule."""
    from .._model.rulefiles import RuleFileError, load_rule_file

    started = record.get("rule")
    if not started:
        return None
    if args.rules_dir:
        raise UsageError(f"the copy was made from rule {started['id']}, whose file {started['file']} commit rewrites; "
                         "drop -o/--rules-dir")
    try:
        declared = load_rule_file(started["file"])
    except RuleFileError as error:
        raise UsageError(str(error)) from None
    if [r.id for r in declared] != [started["id"]]:
        raise UsageError(f"{started['file']} no longer declares rule {started['id']} alone, so commit will not rewrite it")
    declared[0].origin = started["file"]
    return declared[0]


def _gate(work: Edited, old: Rule | None) -> str | None:
    """The old rule's gate while it selects the installed version; else the installed release series."""
    from .._inspect.workcopy import release_series
    from .._model.gate import evaluate

    distribution, version = work.record.get("distribution"), work.record.get("version")
    if not distribution or not version:
        return None
    if old is not None and old.gate and old.gate_distribution == distribution \
            and evaluate(distribution, old.gate_specifier, version).selected:
        return old.gate
    try:
        return release_series(distribution, version)
    except WorkCopyError as error:
        raise UsageError(str(error)) from None


def _no_other(rule_id: str, path: str, extra: list[str]) -> None:
    """Refuse an id that another rule in force already has: the first of an id wins, so it would be ignored."""
    for rule in load_rules(extra):
        if rule.id == rule_id and os.path.abspath(rule.origin) != os.path.abspath(path):
            raise UsageError(f"rule id {rule_id} is already defined by {rule.origin}; give another --id")

