"""`astpatch cache dir|info|clear|prune|warm`: the code cache.

The directory may hold other programs' files too: these commands list and remove only astpatch's
own (entries, entry-point indexes, and their temporary files; see `astpatch._base.store`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from .._base import outcomes as oc
from .._base import settings
from .._base.cache import SUFFIX, Cache, CacheKey, decode
from .._base.store import OwnFile, Store
from ._common import EXIT_FINDING, EXIT_OK, UsageError, load_rules, status


def _store() -> Store:
    return Store(settings.cache_directory(None))


def read_entry(path: str) -> tuple[CacheKey, list[tuple]] | str:
    """(recorded key, outcomes) of the entry file at `path`, or why it cannot be read; for `cache info`."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as error:
        return f"unreadable: {error.strerror or error}"
    decoded = decode(data)
    if isinstance(decoded, str):
        return f"not usable: {decoded}"
    return decoded[0], decoded[1].outcomes


def _own_suffixes() -> tuple[str, ...]:
    from .._engine.pipeline import OWN_SUFFIXES

    return OWN_SUFFIXES


def cmd_cache(args: argparse.Namespace) -> int:
    store = _store()
    directory = store.directory
    if directory is None:
        if args.json:
            print(json.dumps({"directory": None, "off": True, **_NOTHING[args.cache_command]}))
        else:
            print("the cache is off (ASTPATCH_NO_CACHE=1)" if args.cache_command != "dir" else "off")
        return EXIT_OK
    if args.cache_command == "dir":
        print(json.dumps({"directory": directory, "off": False}) if args.json else directory)
        return EXIT_OK
    if args.cache_command == "clear":
        return _clear(args, store)
    if args.cache_command == "info":
        return _info(args, store)
    if args.cache_command == "prune":
        return _prune(args, store)
    return _warm(args, store)


# What each command reports when the cache is off (ASTPATCH_NO_CACHE=1), in --json.
_NOTHING: dict[str, dict] = {
    "dir": {}, "info": {"entries": []}, "clear": {"removed": [], "failed": []},
    "prune": {"removed": [], "remaining": {"files": 0, "bytes": 0}}, "warm": {"stored": False, "modules": []},
}


def _clear(args: argparse.Namespace, store: Store) -> int:
    """Everything of astpatch's but the temporary files of writers still at work (gone in a moment)."""
    now = time.time()
    files = [f for f in store.own_files(_own_suffixes()) if f.pid is None or f.orphaned(now)]
    results = [(f, f.remove()) for f in files]
    failed = _report_failures(results)
    if args.json:
        print(json.dumps({"directory": store.directory, "off": False,
                          "removed": [{"file": f.name, "size": f.status.st_size} for f, problem in results if problem is None],
                          "failed": [{"file": f.name, "problem": problem} for f, problem in results if problem is not None]},
                         indent=2))
    else:
        print(f"removed {len(files) - failed} entries from {store.directory}")
    return EXIT_FINDING if failed else EXIT_OK


def _report_failures(results: list[tuple[OwnFile, str | None]]) -> int:
    """Print one line on stderr for each file that could not be removed; how many."""
    failed = [(f, problem) for f, problem in results if problem is not None]
    for f, problem in failed:
        print(f"astpatch: cannot remove {f.path}: {problem}", file=sys.stderr)
    return len(failed)


def _info(args: argparse.Namespace, store: Store) -> int:
    rows = []
    for f in store.own_files((SUFFIX,)):
        row: dict = {"file": f.name, "size": f.status.st_size}
        data = f"a temporary file of process {f.pid}" if f.pid is not None else read_entry(f.path)
        if isinstance(data, str):
            row["problem"] = data
        else:
            key, outcomes = data
            row.update(module=key.module, path=key.path, astpatch=key.astpatch,
                       outcomes=[{"rule": o[0], "outcome": o[2]} for o in outcomes])
        rows.append(row)
    if args.json:
        print(json.dumps({"directory": store.directory, "entries": rows}, indent=2))
    else:
        print(f"{store.directory}: {len(rows)} entries, {sum(r['size'] for r in rows)} bytes")
        for r in rows:
            what = r.get("problem") or ", ".join(f"{o['rule']}: {o['outcome']}" for o in r["outcomes"])
            print(f"  {r.get('module', '?')}  {r['size']} bytes  {what}")
    return EXIT_OK


def parse_size(text: str) -> int:
    """Bytes from `500000`, `300K`, `256M` or `2G` (powers of 1024); UsageError otherwise."""
    units = {"K": 1024, "M": 1024**2, "G": 1024**3}
    number, unit = (text[:-1], text[-1:].upper()) if text[-1:].upper() in units else (text, "")
    if not (number.isascii() and number.isdigit()):
        raise UsageError(f"--max-size must be a number of bytes, with K, M or G for a multiple: {text!r}")
    return int(number) * units.get(unit, 1)


def _prune(args: argparse.Namespace, store: Store) -> int:
    """Remove orphaned temporary files, files unused for --older-than days, then the least recently
    used beyond --max-size."""
    from .._engine.pipeline import MAX_BYTES, OWN_SUFFIXES

    max_bytes = parse_size(args.max_size) if args.max_size is not None else MAX_BYTES
    if args.older_than is not None and not args.older_than >= 0:
        raise UsageError(f"--older-than must be a number of days, 0 or more: {args.older_than}")
    unused_for = args.older_than * 86400 if args.older_than is not None else None
    chosen = [(f, "a temporary file of a writer that died", problem) for f, problem in store.sweep(OWN_SUFFIXES)]
    chosen += store.evict(OWN_SUFFIXES, max_bytes, unused_for)
    failed = _report_failures([(f, problem) for f, _, problem in chosen])
    removed: list[dict] = [{"file": f.name, "size": f.status.st_size, "why": why}
                           for f, why, problem in chosen if problem is None]
    remaining = [f for f in store.own_files(OWN_SUFFIXES) if f.pid is None]
    kept = {"files": len(remaining), "bytes": sum(f.status.st_size for f in remaining)}
    if args.json:
        print(json.dumps({"directory": store.directory, "max_bytes": max_bytes, "removed": removed,
                          "remaining": kept}, indent=2))
    else:
        print(f"removed {len(removed)} files ({sum(r['size'] for r in removed)} bytes) from {store.directory}; "
              f"{kept['files']} files ({kept['bytes']} bytes) remain")
        for r in removed:
            print(f"  {r['file']}  {r['size']} bytes  {r['why']}")
    return EXIT_FINDING if failed else EXIT_OK


def _warm(args: argparse.Namespace, store: Store) -> int:
    """Rewrite and store every targeted module now, through the pipeline an import uses."""
    from .._engine.pipeline import build_file
    from .._inspect.environment import active, own
    from .._inspect.sources import SourceError, SourceNotFound, locate

    rules = load_rules(args.rules + args.warm_rules)  # `cache --rules X warm` or `cache warm --rules X`
    try:
        venv = active()
    except SourceError:  # not an environment: nothing else to warm
        venv = None
    if venv is not None:  # the code is compiled for this interpreter, keyed by its astpatch and bytecode
        print(f"astpatch: cache warm rewrites the modules of astpatch's own environment ({sys.prefix}), not those of "
              f"the active virtual environment ({os.environ.get('VIRTUAL_ENV')}): to warm the cache for that one, "
              f"run `{venv} -m astpatch cache warm`.", file=sys.stderr)
    cache = Cache(store)
    by_module: dict[str, list] = {}
    for rule in rules:
        for module in rule.modules:
            by_module.setdefault(module, []).append(rule)
    problems = 0
    modules: list[dict] = []
    for module in sorted(by_module):
        try:
            path = locate(module)
        except SourceNotFound as missing:
            modules.append({"module": module, "path": None, "skipped": str(missing), "outcomes": []})
            continue
        try:
            built = build_file(module, path, by_module[module], cache)
        except OSError as error:
            raise UsageError(f"cannot read {path}: {error.strerror or error}") from None
        modules.append({"module": module, "path": path, "skipped": None, "outcomes": [
            {"rule": o.rule_id, "outcome": o.status, "reason": o.reason, "from_cache": o.from_cache}
            for o in built.outcomes]})
        problems += sum(o.status in oc.PROBLEMS for o in built.outcomes)
    # Not warmed: a write failed, or the directory cannot be used at all (then nothing was written).
    stored = not store.write_failed and store.usable(create=True)
    if args.json:
        print(json.dumps({"directory": store.directory, "off": False, "environment": own().as_json(),
                          "stored": stored, "modules": modules}, indent=2))
    else:
        for m in modules:
            if m["skipped"] is not None:
                print(f"{m['module']}: skipped: {m['skipped']}")
            for o in m["outcomes"]:
                print(f"{m['module']}: {o['rule']}: {o['outcome']}{' (already cached)' if o['from_cache'] else ''}")
    if not stored:
        print(f"astpatch: nothing could be stored in {store.directory} (see the warning above)", file=sys.stderr)
        problems += 1
    return status(problems, rules)
