"""`astpatch new --from-diff`: write a rule file from an upstream fix's unified diff."""

from __future__ import annotations

import argparse
import os
import sys

from ._common import EXIT_OK, UsageError, installed_sources


def cmd_new(args: argparse.Namespace) -> int:
    from .._inspect.fromdiff import DiffError, cut, parse, rule_file
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
    try:
        sources = installed_sources() if args.source is None else open_sources(args.source)
        entries = cut(parse(text), sources)
    except (DiffError, SourceError, SyntaxError) as error:
        raise UsageError(f"{args.from_diff}: {error}") from None
    upstream = args.upstream or f"the upstream diff {os.path.basename(args.from_diff)}"
    ids, content = rule_file(entries, rule_id=args.id, gate=args.gate, upstream=upstream, diff_name=os.path.basename(args.from_diff))
    if args.output is None:
        sys.stdout.write(content)
        return EXIT_OK
    name = (args.id or ids[0]).replace("-", "_").replace(".", "_") + ".py"
    path = os.path.join(args.output, name)
    try:
        os.makedirs(args.output, exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(content)
    except OSError as error:
        raise UsageError(f"cannot write {path}: {error.strerror or error}") from None
    print(f"wrote {path}: {', '.join(ids)}")
    return EXIT_OK


