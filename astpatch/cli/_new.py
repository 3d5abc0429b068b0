"""`astpatch new --from-diff`: write a rule file from an upstream change's unified diff."""

from __future__ import annotations

import argparse
import os
import sys

from ._common import EXIT_OK, UsageError, distribution_of, environment, installed_sources

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .._inspect.environment import Environment


def cmd_new(args: argparse.Namespace) -> int:
    from .._inspect.diffs import DiffError, parse
    from .._inspect.fromdiff import plan
    from .._inspect.rulewriter import default_id, file_name, rule_file
    from .._inspect.sources import SourceError, open_sources
    from .._model.rule import gate_problem, valid_rule_id

    try:
        with open(args.from_diff, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError as error:
        raise UsageError(f"cannot read {args.from_diff}: {error.strerror or error}") from None
    if args.id and not valid_rule_id(args.id):
        raise UsageError(f"--id {args.id!r} must be lower case letters, digits, '.', '_' and '-'")
    if args.gate and gate_problem(args.gate):
        raise UsageError(f"--gate {args.gate!r}: {gate_problem(args.gate)}; write it like 'torch>=2.10'")
    if args.fixed_in is not None:
        _check_version(args.fixed_in)
    if args.python and args.source:
        raise UsageError("--python names the environment whose installed modules the diff is read against, "
                         "--source a file or directory to read instead: give one or the other")
    env = environment(args.python, loads_rules=False) if args.source is None else None
    try:
        sources = installed_sources(env) if env is not None else open_sources(args.source)
        changes = plan(parse(text), sources, args.only, skip=_say_skipped)
    except (DiffError, SourceError) as error:
        raise UsageError(f"{args.from_diff}: {error}") from None
    gate = args.gate
    if args.fixed_in is not None:
        gate = _with_upper_bound(gate, args.fixed_in, changes[0].module, env)
        if gate_problem(gate):
            raise UsageError(f"--fixed-in {args.fixed_in!r} makes the gate {gate!r}: {gate_problem(gate)}")
    diff_name = os.path.basename(args.from_diff)
    rule_id = args.id or default_id(changes)
    upstream = args.upstream or f"the upstream diff {diff_name}"
    content = rule_file(changes, rule_id=rule_id, gate=gate, upstream=upstream, diff_name=diff_name)
    if args.output is None:
        sys.stdout.write(content)
        return EXIT_OK
    path = os.path.join(args.output, file_name(rule_id))
    try:
        os.makedirs(args.output, exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(content)
    except OSError as error:
        raise UsageError(f"cannot write {path}: {error.strerror or error}") from None
    print(f"wrote {path}: {rule_id}")
    return EXIT_OK


def _say_skipped(path: str, why: str) -> None:
    print(f"skipped {path}: {why}", file=sys.stderr)


def _check_version(version: str) -> None:
    from packaging.version import InvalidVersion, Version

    try:
        Version(version)
    except InvalidVersion:
        raise UsageError(f"--fixed-in {version!r} is not a PEP 440 version; write it like '2.11.0'") from None


def _with_upper_bound(gate: str | None, fixed_in: str, module: str, env: Environment | None) -> str:
    """The gate, or a gate on the module's distribution, that also stops at the first fixed release:
    there upstream's code has changed, and the rule must say not-applicable or already-fixed, not fail."""
    from .._model.rule import split_gate

    if gate:
        split = split_gate(gate)
        assert split is not None  # checked by gate_problem before
        name, specifier = split
        return f"{name}{specifier},<{fixed_in}" if specifier else f"{name}<{fixed_in}"
    distribution = distribution_of(module.split(".")[0], installed=env is not None, path=env.path if env else None)
    return f"{distribution}<{fixed_in}"
