"""astpatch's benchmark: what it costs at start-up, at import and at call time, against the baselines.

    python3 benchmarks/run.py            # the full run (15 rounds; --rounds 8 takes about 25 minutes on 2 cores)
    python3 benchmarks/run.py --quick    # a few rounds, to prove it still works (CI)
    python3 benchmarks/run.py --startup  # start-up by number of rule files only, in this interpreter
    python3 benchmarks/run.py --warm     # the warm and cold imports' rows only, with more rounds (default 30)
    python3 benchmarks/run.py --against-tree DIR   # the warm rows beside another astpatch (DIR/astpatch, DIR/rules)

Everything is measured side by side in one run: each round starts one fresh process per variant,
in an order that rotates from round to round, so a slow moment of a shared machine falls on all
variants alike. The table gives medians, with min-max, and ratios of paired medians.

It runs in the test environments of tools/venvs.py: torch 2.10.0 (the release astpatch fixes)
and torch 2.13.0 (a release with upstream's fix, for the call-cost comparison); the bare-process
rows (small patched modules, no torch) use the first one's interpreter.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
import venvs  # noqa: E402

MODULE = "torch._inductor.codecache"


# -- the programs each fresh process runs -------------------------------------------------------

# Import the module, timing the import system's find step for it (astpatch's finder, which asks the
# others) and its loader's get_code (the work astpatch adds to), and the whole import statement (the
# module's execution too). The loader is wrapped when the find step gives it, whatever its class.
_TIMED_IMPORT = """
import json, time
import importlib._bootstrap as bootstrap
import torch  # codecache's own imports are mostly torch's: the timed import is then codecache's alone
spent = {{}}
find = bootstrap._find_spec
def timed_get_code(get_code):
    def timed(self, name):
        started = time.perf_counter()
        try:
            return get_code(self, name)
        finally:
            if name == "{module}":
                spent.setdefault("get_code", time.perf_counter() - started)
    return timed
def find_spec(name, path, target=None):
    started = time.perf_counter()
    spec = find(name, path, target)
    if name == "{module}" and "find_spec" not in spent:
        spent["find_spec"] = time.perf_counter() - started
        kind = type(spec.loader)
        kind.get_code = timed_get_code(kind.get_code)
    return spec
bootstrap._find_spec = find_spec
{install}
started = time.perf_counter()
import {module}
print(json.dumps({{"get_code": spent["get_code"], "find_spec": spent["find_spec"],
                  "import": time.perf_counter() - started}}))
"""
IMPORT_PLAIN = _TIMED_IMPORT.format(install="", module=MODULE)


SHIPPED_RULES = ("torch-fxgraph-cache-key-valueerror", "torch-fxgraph-cache-key-pybind11-runtimeerror")


def import_astpatch(cache: str, rules: tuple[str, ...] = (), alone: bool = False) -> str:
    """The timed import under astpatch: the shipped rules and `rules`, or `rules` alone."""
    disable = f"import os; os.environ['ASTPATCH_DISABLE'] = {','.join(SHIPPED_RULES)!r}\n" if alone else ""
    install = f"{disable}import astpatch\nastpatch.install(rules={list(rules)!r}, cache_dir={cache!r})"
    return _TIMED_IMPORT.format(install=install, module=MODULE)


# A whole-change rule with a part at the module's top level (a new helper after `log = ...`): the
# module then compiles whole, renumbered, and the names check runs. Measured alone (its parts are
# text: no libcst) and beside the shipped rules (whose edits import libcst).
MODULE_LEVEL_RULE = """
from astpatch import ApplyHunks, Change, Hunk, Rule

RULE = Rule(
    id="benchmark-module-level-helper",
    summary="A module-level helper, for the benchmark",
    upstream="benchmark fixture",
    changes=[Change(module="torch._inductor.codecache", scope="", edit=ApplyHunks(hunks=[Hunk(
        before=["log = logging.getLogger(__name__)"],
        after=["log = logging.getLogger(__name__)", "", "", "def _benchmark_helper(value):", "    return value"],
    )]))],
)
"""


# The cold path's steps, timed by the pipeline an import goes through, in a process that has torch
# loaded as the import of codecache would.
COLD_DETAIL = f"""
import json, sys, time
import torch
from astpatch._base.store import Store
from astpatch._base.cache import Cache
from astpatch._engine.pipeline import build_file
from astpatch._inspect.sources import locate
from astpatch._model.rulefiles import builtin_rules_dir
from astpatch._model.ruleset import load_rules
rules = [r for r in load_rules([builtin_rules_dir()], print) if r.module == "{MODULE}"]
# The shipped rules' edits work on libcst nodes: its import, timed apart (edits import it on first use).
started = time.perf_counter()
import libcst
timings = {{{{"libcst import": time.perf_counter() - started}}}}
built = build_file("{MODULE}", locate("{MODULE}"), rules, Cache(Store({{cache!r}})), timings=timings)
print(json.dumps({{{{"timings": timings, "outcomes": [o.status for o in built.outcomes]}}}}))
"""

# The same edit done the naive way: the whole module through libcst, then compiled, in a process
# that has torch loaded (as an import-time rewrite would), with the garbage collector left on.
NAIVE = f"""
import json, sys, time
import libcst as cst
import torch
from importlib.machinery import PathFinder
import astpatch
from astpatch import Target
from astpatch._inspect.sources import locate
from astpatch._model.rulefiles import builtin_rules_dir
from astpatch._model.ruleset import load_rules
rules = [r for r in load_rules([builtin_rules_dir()], print) if r.target == "FxGraphCachePickler.dumps"]
path = locate("{MODULE}")
text = open(path, encoding="utf-8").read()
started = time.perf_counter()
module = cst.parse_module(text)
statuses = []
for rule in rules:
    cls = next(n for n in module.body if isinstance(n, cst.ClassDef) and n.name.value == "FxGraphCachePickler")
    fn = next(n for n in cls.body.body if isinstance(n, cst.FunctionDef) and n.name.value == "dumps")
    result = rule.edit.apply(Target(fn, rule.target, rule.module))
    statuses.append(result.status)
    module = module.deep_replace(fn, result.node)
patched = module.code
code = compile(patched, path, "exec", dont_inherit=True)
naive = time.perf_counter() - started

# astpatch's own cold path in the same conditions (no cache), libcst already imported.
from astpatch._base.store import Store
from astpatch._base.cache import Cache
from astpatch._engine.pipeline import build_file
started = time.perf_counter()
build_file("{MODULE}", path, rules, Cache(Store(None)))
ours = time.perf_counter() - started
print(json.dumps({{"naive": naive, "astpatch": ours, "statuses": statuses}}))
"""

INSTALL_COST = """
import json, sys, time
started = time.perf_counter()
import astpatch
imported = time.perf_counter()
astpatch.install(cache_dir=False)
installed = time.perf_counter()
heavy = [m for m in ("libcst", "importlib.metadata", "packaging", "torch") if m in sys.modules]
import os, timeit
line = 'import os; os.environ.get("ASTPATCH_AUTOINSTALL") and __import__("astpatch._autoinstall")'
os.environ.pop("ASTPATCH_AUTOINSTALL", None)
pth = min(timeit.repeat(line, number=10000, repeat=5)) / 10000
print(json.dumps({"import": imported - started, "install": installed - imported, "pth": pth, "heavy": heavy}))
"""

FINDER_COST = """
import json, sys, timeit
import importlib._bootstrap as bootstrap
import astpatch
def per_call(stmt, globals, number):
    return min(timeit.repeat(stmt, globals=globals, number=number, repeat=7)) / number
# A whole lookup through the import system (every finder, the path search): tens of microseconds.
lookups = {number} // 100
without = per_call("find('json.decoder', None)", {{"find": bootstrap._find_spec}}, lookups)
handle = astpatch.install(cache_dir=False)
import fractions  # the first import after install(): without a cache, entry points are read here
finder = handle.finder
direct = per_call("f('json.decoder', None)", {{"f": finder.find_spec}}, {number})
with_finder = per_call("find('json.decoder', None)", {{"find": bootstrap._find_spec}}, lookups)
print(json.dumps({{"direct": direct, "import_system_without": without, "import_system_with": with_finder}}))
"""

IMPORT_TORCH = """
import json, sys, time
if sys.argv[1] == "astpatch":
    import astpatch
    astpatch.install(cache_dir=sys.argv[2])
started = time.perf_counter()
import torch
print(json.dumps({"seconds": time.perf_counter() - started}))
"""

# Call cost of FxGraphCachePickler.dumps on a small object.
CALL_COST = """
import json, sys, timeit
variant = sys.argv[1]
if variant == "astpatch":
    import astpatch
    astpatch.install(cache_dir=sys.argv[2])
import torch
from torch._inductor.codecache import BypassFxGraphCache, FxGraphCachePickler
if variant == "wrapper":
    # What downstream projects install today: a wrapper that converts the missing exception.
    original = FxGraphCachePickler.dumps
    def patched_dumps(self, obj):
        try:
            return original(self, obj)
        except ValueError as e:
            raise BypassFxGraphCache("Failed to pickle cache key") from e
    FxGraphCachePickler.dumps = patched_dumps
pickler = FxGraphCachePickler(torch.fx.symbolic_trace(torch.nn.Identity()))
obj = ("small", 1, 2.0, (3, 4))
number = {number}
best = min(timeit.repeat(lambda: pickler.dumps(obj), number=number, repeat=7)) / number
print(json.dumps({{"seconds": best}}))
"""


# -- the warm imports with another astpatch, side by side ------------------------------------------


def warm_steps(python: Path, tmp: str, against: str | None) -> tuple[list, str, str | None]:
    """The steps that time codecache's warm imports, their caches filled now: the plain import, the
    shipped rules, the module-level change alone, and the same two with the astpatch in `against`
    (a directory with another `astpatch/` and `rules/`), when given. With the module-level rule's
    file, and the compiled copy of `against`."""
    module_rule = os.path.join(tmp, "module_level_rule.py")
    with open(module_rule, "w") as f:
        f.write(MODULE_LEVEL_RULE)
    # The other astpatch compiled, as an installed one is (else each of its modules compiles at every import).
    tree = startup_tree(Path(against), os.path.join(tmp, "against-tree"), python) if against else None
    trees = [("", None, "")] + ([(" against", tree, "against-")] if tree else [])
    programs = {}
    for label, directory, prefix in trees:
        programs[f"warm{label}"] = (import_astpatch(os.path.join(tmp, f"{prefix}warm")), directory)
        programs[f"warm module-level{label}"] = (
            import_astpatch(os.path.join(tmp, f"{prefix}warm-module-level"), (module_rule,), alone=True), directory)
    programs["plain"] = (IMPORT_PLAIN, None)
    for program, directory in programs.values():  # fill the caches; warms __pycache__ too
        run_child(python, program, pythonpath=directory)
    steps = [(name, lambda program=program, directory=directory: run_child(
        python, program, importtime=True, pythonpath=directory)) for name, (program, directory) in programs.items()]
    return steps, module_rule, tree


def add_import(s: Series, name: str, data: dict | None, stderr: str, wall: float) -> None:
    """What one timed import of codecache measured (`_TIMED_IMPORT`), under the variant's name."""
    assert data is not None, name
    s.add(f"{name} get_code", data["get_code"])
    s.add(f"{name} find_spec and get_code", data["find_spec"] + data["get_code"])
    s.add(f"{name} import", data["import"])
    own, cumulative = importtime(stderr, MODULE)
    s.add(f"{name} self", own)
    s.add(f"{name} cumulative", cumulative)
    s.add(f"{name} process", wall)


def warm_rows(s: Series, against: str | None) -> list[tuple[str, str, str, str, str]]:
    """The warm imports of codecache as astpatch's whole part of them: the find step (astpatch's finder,
    and whatever the hit loads there) and get_code; with `against`, beside another astpatch's."""
    ms = 1e3
    rows = []
    for variant, what in (("warm", "shipped rules"), ("warm module-level", "module-level change alone")):
        versions = [(variant, "")] + ([(f"{variant} against", f", {against}")] if against else [])
        for name, label in versions:
            both, plain = f"{name} find_spec and get_code", "plain find_spec and get_code"
            rows.append((f"warm import, {what}: find_spec + get_code{label}", s.cell(both, ms, "ms"),
                         s.cell(plain, ms, "ms"), f"{paired_added(s, both, plain) * ms:+.3f} ms", "<= +0.5 ms"))
            if label:
                rows.append((f"warm import, {what}: get_code{label}", s.cell(f"{name} get_code", ms, "ms"),
                             s.cell("plain get_code", ms, "ms"),
                             f"{paired_added(s, f'{name} get_code', 'plain get_code') * ms:+.3f} ms", ""))
    return rows


# -- small patched modules in a bare process (no torch), and in a torch process ----------------------

# SMALL_COUNT small modules, each with a rule (text hunks: no libcst) on one function. A bare process
# imports one of them, or all, under astpatch (after install(), not timed) and without it; warm (the
# cache holds them) and cold (it holds only the entry-point index, so no discovery is timed). A torch
# process does the same once it has imported torch (not timed): a program's usual state, with
# `linecache`, `inspect` and the rest of what torch imports already loaded.
SMALL_COUNT = 20
SMALL_MODULE = '''"""{name}: a small module for the benchmark."""


def words(text):
    found = text.split()
    return [w.strip(",") for w in found]


def total(values):
    return sum(values)
'''
SMALL_RULE = """Rule(
        id="benchmark-{name}", summary="Lower-case the words, for the benchmark", upstream="benchmark fixture",
        module="{name}", target="words",
        edit=ApplyHunks(hunks=[Hunk(before=["    found = text.split()"], after=["    found = text.lower().split()"])]),
    ),
"""
BARE_IMPORT = """
import json, sys, time
{install}
{prelude}
before = set(sys.modules)
started = time.perf_counter()
import {names}
seconds = time.perf_counter() - started
added = sorted(set(sys.modules) - before)
patched = [m.words("A,") == ["a"] for m in ({names},)]
print(json.dumps({{"seconds": seconds, "added": added, "patched": patched}}))
"""


def small_modules(tmp: str, python: Path) -> tuple[str, str]:
    """The directory of the small modules (compiled, as installed code is) and their rule file."""
    site = os.path.join(tmp, "small")
    os.makedirs(site)
    names = [f"small_{i}" for i in range(SMALL_COUNT)]
    for name in names:
        with open(os.path.join(site, f"{name}.py"), "w") as f:
            f.write(SMALL_MODULE.format(name=name))
    subprocess.run([str(python), "-m", "compileall", "-q", site], check=True)
    rules = os.path.join(tmp, "small_rules.py")
    with open(rules, "w") as f:
        f.write("from astpatch import ApplyHunks, Hunk, Rule\n\nRULES = [\n")
        f.writelines("    " + SMALL_RULE.format(name=name) for name in names)
        f.write("]\n")
    return site, rules


def bare_import(count: int, rules: str | None = None, cache: str | None = None, prelude: str = "") -> str:
    """The program that imports `count` small modules, after `prelude`: under astpatch when `rules` are given."""
    install = f"import astpatch\nastpatch.install(rules=[{rules!r}], cache_dir={cache!r})" if rules else ""
    return BARE_IMPORT.format(install=install, prelude=prelude, names=", ".join(f"small_{i}" for i in range(count)))


PROCESSES = {"bare": "", "torch": "import torch"}  # what the process has imported before the timed import


def measure_bare(s: Series, python: Path, tmp: str, rounds: int, against: str | None, process: str = "bare") -> None:
    """The `process` rows (see PROCESSES): warm and cold imports of 1 and of SMALL_COUNT small modules,
    side by side with the same imports without astpatch (and with the astpatch in `against`, when given)."""
    prelude = PROCESSES[process]
    tmp = os.path.join(tmp, process)
    os.makedirs(tmp)
    site, rules = small_modules(tmp, python)
    trees = {"now": None, **({"against": against} if against else {})}
    paths = {tree: os.pathsep.join(filter(None, [directory, site])) for tree, directory in trees.items()}
    warm = {tree: os.path.join(tmp, f"warm-{tree}") for tree in trees}
    for tree in trees:  # fill the warm caches, entry-point index included
        run_child(python, bare_import(SMALL_COUNT, rules, warm[tree], prelude), pythonpath=paths[tree])
    time.sleep(2.5)  # the rule file settles: the next program writes the start-up record, as a usual one finds it
    for tree in trees:
        run_child(python, bare_import(1, rules, warm[tree], prelude), pythonpath=paths[tree])
    cold = 0

    def cold_cache(tree: str) -> str:
        """An empty cache but for the entry-point index (discovering the entry points is not timed)."""
        nonlocal cold
        cold += 1
        directory = os.path.join(tmp, f"cold-{tree}-{cold}")
        os.makedirs(directory, mode=0o700)
        for name in os.listdir(warm[tree]):
            if name.startswith("entry-points-"):
                shutil.copy2(os.path.join(warm[tree], name), directory)
        return directory

    for r in range(rounds):
        variants = [(f"{process} plain {count}", count, None, "now") for count in (1, SMALL_COUNT)]
        variants += [(f"{process} {kind} {count} {tree}", count, kind, tree)
                     for count in (1, SMALL_COUNT) for kind in ("warm", "cold") for tree in trees]
        for name, count, kind, tree in rotated(variants, r):
            cache = None if kind is None else warm[tree] if kind == "warm" else cold_cache(tree)
            data, _, _ = run_child(python, bare_import(count, rules if kind else None, cache, prelude),
                                   pythonpath=paths[tree])
            assert data is not None and data["patched"] == [kind is not None] * count, (name, data)
            s.add(name, data["seconds"])
            s.added_modules[name] = data["added"]


def bare_rows(s: Series, against: str | None, process: str = "bare") -> list[tuple[str, str, str, str, str]]:
    ms = 1e3
    rows: list[tuple[str, str, str, str, str]] = []
    if f"{process} plain 1" not in s.values:
        return rows
    for count in (1, SMALL_COUNT):
        what = "1 small module" if count == 1 else f"{count} small modules"
        plain = f"{process} plain {count}"
        for kind, target in (("warm", "<= +0.5 ms" if count == 1 else ""), ("cold", "")):
            for tree, label in (("now", ""), *((("against", f", {against}"),) if against else ())):
                name = f"{process} {kind} {count} {tree}"
                added = paired_added(s, name, plain)
                per = f" ({added / count * ms:+.3f} ms each)" if count > 1 else ""
                rows.append((f"{process} process, {kind} import of {what}{label}", s.cell(name, ms, "ms"),
                             s.cell(plain, ms, "ms"), f"{added * ms:+.3f} ms{per}", target))
    for tree, label in (("now", ""), *((("against", f", {against}"),) if against else ())):
        extra = sorted(set(s.added_modules[f"{process} warm 1 {tree}"]) - set(s.added_modules[f"{process} plain 1"]))
        own = [m for m in extra if m.startswith("astpatch.")]
        others = [m for m in extra if m not in own]
        rows.append((f"{process} process, warm: modules imported besides the target{label}",
                     f"{len(own)} of astpatch's{f' ({own[0]})' if len(own) == 1 else ''}, {len(others)} others"
                     + (f" ({', '.join(others[:3])}{', ...' if len(others) > 3 else ''})" if others else ""),
                     "0", "", "none"))
    return rows


# -- running and measuring ------------------------------------------------------------------------


def run_child(python: Path, program: str, *args: str, importtime: bool = False,
              pythonpath: str | None = None) -> tuple[dict | None, str, float]:
    command = [str(python)]
    if importtime:
        command += ["-X", "importtime"]
    command += ["-c", program, *args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASTPATCH_")}
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tempfile.gettempdir())
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"benchmark child failed ({result.returncode}):\n{result.stderr[-3000:]}")
    lines = result.stdout.strip().splitlines()
    data = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else None
    return data, result.stderr, wall


def source_trees(tmp: str, ref: str, python: Path) -> tuple[str, str]:
    """This checkout's astpatch and the one at git revision `ref`, each exported beside its rules
    and compiled, so that `import astpatch; astpatch.install()` can be timed side by side."""
    now, before = os.path.join(tmp, "now"), os.path.join(tmp, "before")
    for name in ("astpatch", "rules"):
        shutil.copytree(venvs.ROOT / name, os.path.join(now, name), ignore=shutil.ignore_patterns("__pycache__"))
    os.makedirs(before)
    archive = subprocess.run(["git", "-C", str(venvs.ROOT), "archive", ref, "astpatch", "rules"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", before], input=archive, check=True)
    subprocess.run([str(python), "-m", "compileall", "-q", now, before], check=True)
    return now, before


def importtime(stderr: str, module: str) -> tuple[float, float]:
    """(self, cumulative) seconds of `module` in -X importtime output."""
    for line in stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[2].strip() == module and parts[0].startswith("import time:"):
            return int(parts[0].split(":")[1]) / 1e6, int(parts[1]) / 1e6
    raise SystemExit(f"{module} not in the -X importtime output")


def rotated(variants: list, round_: int) -> list:
    k = round_ % len(variants)
    return variants[k:] + variants[:k]


class Series:
    def __init__(self) -> None:
        self.values: dict[str, list[float]] = {}
        self.added_modules: dict[str, list[str]] = {}  # by variant: the modules its import added (last run)

    def add(self, name: str, value: float) -> None:
        self.values.setdefault(name, []).append(value)

    def median(self, name: str) -> float:
        return statistics.median(self.values[name])

    def cell(self, name: str, scale: float, unit: str) -> str:
        v = self.values[name]
        return f"{statistics.median(v) * scale:.3g} {unit} ({min(v) * scale:.3g}-{max(v) * scale:.3g})"


def paired_added(series: Series, a: str, b: str) -> float:
    """Median of the per-round differences a - b (rounds are paired)."""
    return statistics.median(x - y for x, y in zip(series.values[a], series.values[b]))


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} CPUs, {platform.system()} {platform.machine()}"


# -- start-up by number of rule files: `import astpatch; astpatch.install()` in a bare process ------

STARTUP_COUNTS = (0, 1, 10, 100, 1_000)  # generated rule files, beside the shipped ones
DISTRIBUTION_RULES = 100  # the rules of a generated distribution (an entry point), beside the shipped ones

STARTUP_RULE = """from astpatch import AddExceptTypes, Rule

RULE = Rule(
    id="startup-{n}",
    summary="A generated rule, for the start-up benchmark",
    module="startup_target_{n}",
    target="Pickler.dumps",
    edit=AddExceptTypes(add=("ValueError",), converts_to="Bypass"),
    upstream="benchmark fixture",
)
"""

# The whole program of a bare process; it prints its own timings, and what it installed, without json
# (whose import would be part of the process's time).
STARTUP_PROGRAM = """import time
started = time.perf_counter()
import astpatch
imported = time.perf_counter()
{install}
installed = time.perf_counter()
import sys
heavy = [m for m in ("libcst", "importlib.metadata", "packaging") if m in sys.modules]
sys.stdout.write('{{"import": %r, "install": %r, "targets": %d, "heavy": %d, "modules": %d}}\\n' % (
    imported - started, installed - imported, {targets}, len(heavy), len([m for m in sys.modules if m.startswith("astpatch")])))
"""


def startup_tree(root: Path, destination: str, python: Path) -> str:
    """A compiled copy of the astpatch package and its rules under `root` (a checkout, or an exported revision)."""
    for name in ("astpatch", "rules"):
        shutil.copytree(root / name, os.path.join(destination, name), ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([str(python), "-m", "compileall", "-q", destination], check=True)
    return destination


def startup_variants(tmp: str) -> list[tuple[str, str | None, int]]:
    """(variant, the install() call or None for `import astpatch` alone, targets expected), with the rule
    directories they name written into `tmp`."""
    variants: list[tuple[str, str | None, int]] = [("import astpatch", None, 0)]
    for count in STARTUP_COUNTS:
        directory = os.path.join(tmp, f"startup-rules-{count}")
        os.makedirs(directory)
        for n in range(count):
            with open(os.path.join(directory, f"rule_{n:04}.py"), "w") as f:
                f.write(STARTUP_RULE.format(n=n))
        cache = os.path.join(tmp, f"startup-cache-{count}")
        variants.append((f"{count} rule files", f"h = astpatch.install(rules=[{directory!r}], cache_dir={cache!r})",
                         count + 1))  # and the shipped rules' target
    last = os.path.join(tmp, f"startup-rules-{STARTUP_COUNTS[-1]}")
    variants.append((f"{STARTUP_COUNTS[-1]} rule files, no cache", f"h = astpatch.install(rules=[{last!r}], cache_dir=False)",
                     STARTUP_COUNTS[-1] + 1))
    # Rules shipped by another distribution (the `astpatch.rules` entry point), as a project installs them.
    site = os.path.join(tmp, "startup-distribution")
    info = os.path.join(site, "benchrules-1.0.dist-info")
    os.makedirs(info)
    with open(os.path.join(info, "METADATA"), "w") as f:
        f.write("Metadata-Version: 2.1\nName: benchrules\nVersion: 1.0\n\n")
    with open(os.path.join(info, "entry_points.txt"), "w") as f:
        f.write("[astpatch.rules]\nbench = benchrules_rules\n")
    with open(os.path.join(site, "benchrules_rules.py"), "w") as f:
        f.write("from astpatch import AddExceptTypes, Rule\n\nRULES = [\n")
        f.writelines(STARTUP_RULE.split("RULE = ", 1)[1].format(n=n).rstrip() + ",\n" for n in range(DISTRIBUTION_RULES))
        f.write("]\n")
    cache = os.path.join(tmp, "startup-cache-distribution")
    variants.append((f"a distribution of {DISTRIBUTION_RULES} rules",
                     f"import sys; sys.path.append({site!r})\nh = astpatch.install(cache_dir={cache!r})",
                     DISTRIBUTION_RULES + 1))
    return variants


# The floor under any start-up: importing modules that do nothing (a package and its modules, compiled,
# the directory listed once); install() imports fourteen of astpatch's from the start-up record.
FLOOR_MODULES = 12
FLOOR_PROGRAM = """import sys, time
sys.path.insert(0, {site!r})
started = time.perf_counter()
import {names}
imported = time.perf_counter()
sys.stdout.write('{{"import": %r, "install": 0.0}}\\n' % (imported - started))
"""


def floor_program(tmp: str, python: Path) -> str:
    """The program that imports FLOOR_MODULES empty modules: a package and the modules in it."""
    package = os.path.join(tmp, "floor", "floorpkg")
    os.makedirs(package)
    for name in ["__init__", *(f"m{i}" for i in range(1, FLOOR_MODULES))]:
        with open(os.path.join(package, f"{name}.py"), "w") as f:
            f.write('"""An empty module."""\n')
    subprocess.run([str(python), "-m", "compileall", "-q", package], check=True)
    names = ", ".join(f"floorpkg.m{i}" for i in range(1, FLOOR_MODULES))
    return FLOOR_PROGRAM.format(site=os.path.dirname(package), names=names)


def measure_startup(s: Series, python: Path, tmp: str, rounds: int, trees: dict[str, str]) -> None:
    """`python -c pass`, `import astpatch`, and `import astpatch; astpatch.install()` with each number of rule
    files, for each tree (label: directory on PYTHONPATH): fresh processes, the order rotating every round.
    Each cache is used twice before measuring, so the rows are a program's usual start-up, not its first:
    once by a program that imports a module after install() (which writes the entry-point index, as a
    program's first import does), once more (which writes the start-up record, where there is one)."""
    steps: list[tuple[str, str, str | None]] = [
        ("python -c pass", "pass", None),
        (f"floor: {FLOOR_MODULES} empty modules (a package and its modules)", floor_program(tmp, python), None)]
    variants = {label: startup_variants(os.path.join(tmp, f"startup-{label}")) for label in trees}
    time.sleep(2.5)  # rule files are usually older than this: their status then vouches for them by itself
    for label, tree in trees.items():
        for variant, install, targets in variants[label]:
            program = STARTUP_PROGRAM.format(install=install or "", targets="len(h.targets)" if install else "0")
            run_child(python, program + "import fractions\n", pythonpath=tree)
            data, _, _ = run_child(python, program, pythonpath=tree)
            assert data is not None and data["targets"] == targets and not data["heavy"], (label, variant, data)
            steps.append((f"{label}: {variant}", program, tree))
    for r in range(rounds):
        for name, program, tree in rotated(steps, r):
            data, _, wall = run_child(python, program, pythonpath=tree)
            s.add(f"startup {name} process", wall)
            if data is not None:
                s.add(f"startup {name} in-process", data["import"] + data["install"])


def startup_rows(s: Series) -> list[tuple[str, str, str, str, str]]:
    """The rows of `measure_startup`: time in the process, and added to a bare process's."""
    ms = 1e3
    baseline = "startup python -c pass process"
    if baseline not in s.values:
        return []
    rows = [("start-up: `python -c pass`, whole process", s.cell(baseline, ms, "ms"), "", "", "")]
    names = [key[len("startup "):-len(" in-process")] for key in s.values if key.endswith(" in-process")]
    for name in names:
        inside, whole = f"startup {name} in-process", f"startup {name} process"
        target = "<= 1.5 ms" if ("rule files" in name or "distribution" in name) and "no cache" not in name else ""
        rows.append((f"start-up, {name}", s.cell(inside, ms, "ms"), s.cell(baseline, ms, "ms"),
                     f"+{paired_added(s, whole, baseline) * ms:.2f} ms to the process", target))
    labels = sorted({name.split(":")[0] for name in names if not name.startswith("floor")})
    if len(labels) == 2:  # two trees: each variant side by side
        now, before = labels if labels[0] == "now" else labels[::-1]
        for name in names:
            if name.startswith(f"{now}:"):
                variant = name.split(": ", 1)[1]
                a, b = f"startup {now}: {variant} in-process", f"startup {before}: {variant} in-process"
                rows.append((f"start-up, {variant}: {now} vs {before}", s.cell(a, ms, "ms"), s.cell(b, ms, "ms"),
                             f"{paired_added(s, a, b) * ms:+.2f} ms", ""))
    return rows


def startup_main(argv: list[str]) -> int:
    """Only the start-up rows, in this interpreter (no torch needed): `run.py --startup [--rounds N]
    [--against DIR]`, DIR holding another copy of `astpatch/` and `rules/` to measure side by side."""
    parser = argparse.ArgumentParser(prog="run.py --startup")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--against", metavar="DIR", help="a directory with another astpatch/ and rules/")
    args = parser.parse_args(argv)
    python = Path(sys.executable)
    s = Series()
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"now": startup_tree(venvs.ROOT, os.path.join(tmp, "now"), python)}
        if args.against:
            trees["before"] = startup_tree(Path(args.against), os.path.join(tmp, "before"), python)
        measure_startup(s, python, tmp, args.rounds, trees)
    rows = startup_rows(s)
    print(f"\nastpatch start-up: CPython {platform.python_version()}; {machine()}")
    print(f"{args.rounds} rounds of fresh processes per variant, interleaved; medians (min-max)\n")
    print_table(rows)
    return 0


def warm_main(argv: list[str]) -> int:
    """Only the warm and cold imports' rows (codecache's warm imports, the small modules in a bare and in a
    torch process), with more rounds than a full run affords: `run.py --warm [--rounds N] [--against-tree DIR]`."""
    parser = argparse.ArgumentParser(prog="run.py --warm")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--against-tree", metavar="DIR", help="a directory with another astpatch/ and rules/")
    args = parser.parse_args(argv)
    python = venvs.bin_python(ensure_torch210())
    s = Series()
    with tempfile.TemporaryDirectory() as tmp:
        warm, _, against_tree = warm_steps(python, tmp, args.against_tree)
        print(f"measuring: {args.rounds} rounds of fresh processes per variant", file=sys.stderr)
        for r in range(args.rounds):
            for name, step in rotated(warm, r):
                add_import(s, name, *step())
        for process in PROCESSES:
            measure_bare(s, python, tmp, args.rounds, against_tree, process)
    rows = warm_rows(s, args.against_tree) + [row for process in PROCESSES for row in bare_rows(s, args.against_tree, process)]
    print(f"\nastpatch warm imports: CPython {platform.python_version()}, torch 2.10.0; {machine()}")
    print(f"{args.rounds} rounds of fresh processes per variant, interleaved; medians (min-max)\n")
    print_table(rows)
    return 0


def torch_env(name: str) -> Path:
    """A torch environment of tools/venvs.py (`torch210`, `torch213`), on the benchmark's interpreter."""
    return venvs.ensure(name, venvs.find_python("3.11") or sys.executable, log=lambda m: print(m, file=sys.stderr))


def ensure_torch210() -> Path:
    """The torch 2.10.0 environment, with this checkout's astpatch installed in it."""
    env = torch_env("torch210")
    venvs.install_project(env, log=lambda m: print(m, file=sys.stderr))
    return env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 rounds and short loops: proves the benchmark works")
    parser.add_argument("--rounds", type=int, help="fresh processes per variant (default 15, quick 3)")
    parser.add_argument("--install-against", metavar="REV",
                        help="also time `import astpatch; astpatch.install()` side by side with git revision REV")
    parser.add_argument("--against-tree", metavar="DIR",
                        help="also time the warm imports with the astpatch package in DIR (a copy of another version, "
                             "its rules/ beside it), side by side")
    args = parser.parse_args()
    rounds = args.rounds or (3 if args.quick else 15)
    number = 2_000 if args.quick else 50_000

    env210 = ensure_torch210()
    env213 = torch_env("torch213")
    py210, py213 = venvs.bin_python(env210), venvs.bin_python(env213)

    s = Series()
    with tempfile.TemporaryDirectory() as tmp:
        warm, module_rule, against_tree = warm_steps(py210, tmp, args.against_tree)
        warm_cache = os.path.join(tmp, "warm")  # the shipped rules' cache, as warm_steps filled it
        trees = source_trees(tmp, args.install_against, py210) if args.install_against else None
        print(f"measuring: {rounds} rounds of fresh processes per variant", file=sys.stderr)
        for r in range(rounds):
            if trees is not None:
                for name, tree in rotated([("now", trees[0]), ("before", trees[1])], r):
                    data, _, _ = run_child(py210, INSTALL_COST, pythonpath=tree)
                    assert data is not None and data["heavy"] == [], data
                    s.add(f"import and install, {name}", data["import"] + data["install"])
            cold_cache = os.path.join(tmp, f"cold{r}")
            steps = [
                *warm,
                ("cold", lambda cache=cold_cache: run_child(py210, import_astpatch(cache), importtime=True)),
                ("cold module-level", lambda cache=cold_cache + "-module": run_child(
                    py210, import_astpatch(cache, (module_rule,), alone=True), importtime=True)),
                ("cold module-level beside shipped", lambda cache=cold_cache + "-both": run_child(
                    py210, import_astpatch(cache, (module_rule,)), importtime=True)),
            ]
            for name, step in rotated(steps, r):
                data, stderr, wall = step()
                add_import(s, name, data, stderr, wall)
                if name.startswith("cold"):
                    # libcst's import inside this very import (processes differ too much to subtract
                    # another process's figure): what the rewrite adds besides it.
                    libcst_here = next((importtime(stderr, "libcst")[1] for line in stderr.splitlines()
                                        if line.rpartition("|")[2].strip() == "libcst"), 0.0)
                    s.add(f"{name} without libcst", data["get_code"] - libcst_here)
            detail, _, _ = run_child(py210, COLD_DETAIL.format(cache=os.path.join(tmp, f"detail{r}")))
            assert detail is not None and set(detail["outcomes"]) == {"applied"}, detail
            for step_name, seconds in detail["timings"].items():
                s.add(f"cold {step_name}", seconds)
            naive, _, _ = run_child(py210, NAIVE)
            assert naive is not None and set(naive["statuses"]) == {"applied"}, naive
            s.add("naive whole-module", naive["naive"])
            s.add("astpatch function-only", naive["astpatch"])
            install, _, _ = run_child(py210, INSTALL_COST)
            assert install is not None and install["heavy"] == [], install
            s.add("import astpatch", install["import"])
            s.add("install()", install["install"])
            s.add("pth line, switch off", install["pth"])
            finder, _, _ = run_child(py210, FINDER_COST.format(number=number * 20))
            assert finder is not None
            s.add("find_spec direct", finder["direct"])
            s.add("find_spec via import system, without", finder["import_system_without"])
            s.add("find_spec via import system, with", finder["import_system_with"])
            for name, args_ in rotated([("torch plain", ("plain",)), ("torch astpatch", ("astpatch", warm_cache))], r):
                data, _, _ = run_child(py210, IMPORT_TORCH, *args_)
                s.add(f"import {name}", data["seconds"])  # type: ignore[index]
            calls = [("call astpatch", py210, ("astpatch", warm_cache)), ("call upstream 2.10", py210, ("plain",)),
                     ("call wrapper", py210, ("wrapper",)), ("call upstream 2.13", py213, ("plain",))]
            for name, python, args_ in rotated(calls, r):
                data, _, _ = run_child(python, CALL_COST.format(number=number), *args_)
                s.add(name, data["seconds"])  # type: ignore[index]
            print(f"  round {r + 1}/{rounds} done", file=sys.stderr)
        measure_startup(s, py210, tmp, rounds, {"now": trees[0], "before": trees[1]} if trees is not None else
                        {"now": startup_tree(venvs.ROOT, os.path.join(tmp, "startup-now"), py210)})
        for process in PROCESSES:
            measure_bare(s, py210, tmp, rounds, against_tree, process)

    report(s, rounds, args.install_against, args.against_tree)
    return 0


def report(s: Series, rounds: int, install_against: str | None = None, against_tree: str | None = None) -> None:
    ms, us, ns = 1e3, 1e6, 1e9
    warm_added = paired_added(s, "warm get_code", "plain get_code")
    warm_self_added = paired_added(s, "warm self", "plain self")
    cold_added = paired_added(s, "cold get_code", "plain get_code")
    libcst = s.median("cold libcst import")
    rest = paired_added(s, "cold without libcst", "plain get_code")
    steps = ("libcst import", "locate", "edit", "compile", "upstream code", "cache write")
    speedup = s.median("naive whole-module") / s.median("astpatch function-only")
    torch_ratio = s.median("import torch astpatch") / s.median("import torch plain")
    call_vs_213 = s.median("call astpatch") / s.median("call upstream 2.13")
    call_vs_210 = s.median("call astpatch") / s.median("call upstream 2.10")
    wrapper_ratio = s.median("call wrapper") / s.median("call astpatch")
    finder_added = s.median("find_spec via import system, with") - s.median("find_spec via import system, without")

    rows = [
        ("warm import: codecache's get_code", s.cell("warm get_code", ms, "ms"), s.cell("plain get_code", ms, "ms"),
         f"+{warm_added * ms:.3f} ms", "<= +0.5 ms, no libcst"),
        ("warm import: the whole `import` statement", s.cell("warm import", ms, "ms"), s.cell("plain import", ms, "ms"),
         f"+{paired_added(s, 'warm import', 'plain import') * ms:.3f} ms", "(finder, loader's import, exec)"),
        ("warm import: codecache self time", s.cell("warm self", ms, "ms"), s.cell("plain self", ms, "ms"),
         f"+{warm_self_added * ms:.3f} ms", "(-X importtime)"),
        ("warm import: process total", s.cell("warm process", 1, "s"), s.cell("plain process", 1, "s"),
         f"x{s.median('warm process') / s.median('plain process'):.3f}", ""),
        ("cold import: codecache's get_code", s.cell("cold get_code", ms, "ms"), s.cell("plain get_code", ms, "ms"),
         f"+{cold_added * ms:.1f} ms", "<= +200 ms"),
        ("  of which libcst import", s.cell("cold libcst import", ms, "ms"), "", f"{libcst * ms:.1f} ms", ""),
        ("  of which everything else", "", "", f"{rest * ms:.1f} ms", "< 20 ms"),
    ]
    for step in steps:
        key = f"cold {step}"
        if key in s.values:
            rows.append((f"    {step}", s.cell(key, ms, "ms"), "", "", ""))
    rows += [
        ("warm import, module-level change alone: get_code", s.cell("warm module-level get_code", ms, "ms"),
         s.cell("plain get_code", ms, "ms"), f"+{paired_added(s, 'warm module-level get_code', 'plain get_code') * ms:.3f} ms",
         "<= +0.5 ms"),
        ("cold import, module-level change alone: get_code", s.cell("cold module-level get_code", ms, "ms"),
         s.cell("plain get_code", ms, "ms"), f"+{paired_added(s, 'cold module-level get_code', 'plain get_code') * ms:.1f} ms",
         "<= +200 ms"),
        ("cold import, module-level change beside the shipped rules", s.cell("cold module-level beside shipped get_code",
                                                                               ms, "ms"),
         s.cell("plain get_code", ms, "ms"),
         f"+{paired_added(s, 'cold module-level beside shipped get_code', 'plain get_code') * ms:.1f} ms", ""),
        ("  of which everything but libcst's import", "", "",
         f"{paired_added(s, 'cold module-level beside shipped without libcst', 'plain get_code') * ms:.1f} ms", ""),
        ("cold rewrite vs whole-module libcst", s.cell("astpatch function-only", ms, "ms"),
         s.cell("naive whole-module", ms, "ms"), f"{speedup:.1f}x faster", ">= 10x"),
        ("find_spec, non-target (direct call)", s.cell("find_spec direct", ns, "ns"), "", "", "< 150 ns"),
        ("import system find, added by the finder", s.cell("find_spec via import system, with", ns, "ns"),
         s.cell("find_spec via import system, without", ns, "ns"), f"+{finder_added * ns:.0f} ns", ""),
        ("import torch", s.cell("import torch astpatch", 1, "s"), s.cell("import torch plain", 1, "s"),
         f"x{torch_ratio:.3f}", "within 1%"),
        ("import astpatch", s.cell("import astpatch", ms, "ms"), "", "", ""),
        ("astpatch.install()", s.cell("install()", ms, "ms"), "", "", "< 1 ms, no libcst/metadata"),
        (".pth line at start-up, switch off", s.cell("pth line, switch off", us, "us"), "", "", "< 1 ms"),
    ]
    if install_against:
        now, before = "import and install, now", "import and install, before"
        rows.append((f"import astpatch + install() vs {install_against}", s.cell(now, ms, "ms"),
                     s.cell(before, ms, "ms"), f"{paired_added(s, now, before) * ms:+.3f} ms", "<= +0 (no more than before)"))
    rows += warm_rows(s, against_tree) + [row for process in PROCESSES for row in bare_rows(s, against_tree, process)]
    rows += [
        ("call: patched dumps vs torch 2.13 dumps", s.cell("call astpatch", us, "us"), s.cell("call upstream 2.13", us, "us"),
         f"x{call_vs_213:.3f}", "within 2%"),
        ("call: patched dumps vs 2.10's own dumps", s.cell("call astpatch", us, "us"), s.cell("call upstream 2.10", us, "us"),
         f"x{call_vs_210:.3f}", ""),
        ("call: runtime wrapper vs patched dumps", s.cell("call wrapper", us, "us"), s.cell("call astpatch", us, "us"),
         f"x{wrapper_ratio:.3f}", "> 1 (wrapper slower)"),
    ]
    rows += startup_rows(s)
    print(f"\nastpatch benchmark: CPython {platform.python_version()}, torch 2.10.0 (2.13.0 for upstream's fix), "
          "the two shipped rules applied to torch._inductor.codecache")
    print(f"machine: {machine()}")
    print(f"{rounds} rounds of fresh processes per variant, interleaved; medians (min-max)\n")
    print_table(rows)


def print_table(rows: list[tuple[str, str, str, str, str]]) -> None:
    header = ("measure", "astpatch", "baseline", "added / ratio", "target")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(5)]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths)) + " |")


if __name__ == "__main__":
    MODES = {"--startup": startup_main, "--warm": warm_main}
    raise SystemExit(MODES[sys.argv[1]](sys.argv[2:]) if sys.argv[1:2] and sys.argv[1] in MODES else main())
