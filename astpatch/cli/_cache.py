"""`astpatch cache dir|info|clear|warm`: the code cache."""

from __future__ import annotations

import argparse
import json
import os
import sys

from .._base import outcomes as oc
from .._base import settings
from .._base.store import Store
from .._engine.cache import SUFFIX, Cache, read_entry
from .._model.entrypoints import INDEX_SUFFIX
from ._common import EXIT_FINDING, EXIT_OK, UsageError, load_rules

_ALL = (SUFFIX, INDEX_SUFFIX, ".tmp")  # entries, entry-point indexes, leftover temporary files


def _store() -> Store:
    return Store(settings.cache_directory(None))


def cmd_cache(args: argparse.Namespace) -> int:
    store = _store()
    directory = store.directory
    if directory is None:
        print("the cache is off (ASTPATCH_NO_CACHE=1)" if args.cache_command != "dir" else "off")
        return EXIT_OK
    if args.cache_command == "dir":
        print(directory)
        return EXIT_OK
    if args.cache_command == "clear":
        removed = 0
        for path in store.files(_ALL):
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
        rows = []
        for path in store.files((SUFFIX, ".tmp")):
            data = read_entry(path) if os.path.isfile(path) else "not a regular file"
            row: dict = {"file": os.path.basename(path), "size": os.path.getsize(path) if os.path.isfile(path) else 0}
            if isinstance(data, str):
                row["problem"] = data
            else:
                key, outcomes = data
                row.update(module=key.module, path=key.path, astpatch=key.astpatch,
                           outcomes=[{"rule": o[0], "outcome": o[2]} for o in outcomes])
            rows.append(row)
        if args.json:
            print(json.dumps({"directory": directory, "entries": rows}, indent=2))
        else:
            print(f"{directory}: {len(rows)} entries, {sum(r['size'] for r in rows)} bytes")
            for r in rows:
                what = r.get("problem") or ", ".join(f"{o['rule']}: {o['outcome']}" for o in r["outcomes"])
                print(f"  {r.get('module', '?')}  {r['size']} bytes  {what}")
        return EXIT_OK
    return _warm(args, store)


def _warm(args: argparse.Namespace, store: Store) -> int:
    """Rewrite and store every targeted module now, through the pipeline an import uses."""
    from .._engine.pipeline import build_file
    from .._inspect.sources import SourceNotFound, locate

    rules = load_rules(args.rules)
    cache = Cache(store)
    by_module: dict[str, list] = {}
    for rule in rules:
        for module in rule.modules:
            by_module.setdefault(module, []).append(rule)
    problems = 0
    for module in sorted(by_module):
        try:
            path = locate(module)
        except SourceNotFound as missing:
            print(f"{module}: skipped: {missing}")
            continue
        try:
            built = build_file(module, path, by_module[module], cache)
        except OSError as error:
            raise UsageError(f"cannot read {path}: {error.strerror or error}") from None
        for o in built.outcomes:
            print(f"{module}: {o.rule_id}: {o.status}{' (already cached)' if o.from_cache else ''}")
            problems += o.status in oc.PROBLEMS
    # Not warmed: a write failed, or the directory cannot be used at all (then nothing was written).
    if store.write_failed or not store.usable(create=True):
        print(f"astpatch: nothing could be stored in {store.directory} (see the warning above)", file=sys.stderr)
        problems += 1
    return EXIT_FINDING if problems else EXIT_OK
