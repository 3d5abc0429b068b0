"""Programs the torch tests run in fresh interpreters, so each sees its own import of torch.

Each prints one JSON object as its last line.
"""

from __future__ import annotations

# Pickle objects through the real FxGraphCachePickler and report what happened.
PICKLER = r'''
import ctypes, json, logging, sys, tempfile, traceback
if sys.argv[1] == "astpatch":
    import astpatch
    astpatch.install(cache_dir=sys.argv[2])
import torch
from torch._inductor.codecache import BypassFxGraphCache, FxGraphCachePickler

records = []
class Keep(logging.Handler):
    def emit(self, record):
        records.append(record.getMessage())
logging.getLogger("torch._inductor.codecache").addHandler(Keep())
logging.getLogger("torch._inductor.codecache").propagate = False

class Raises:
    def __init__(self, error):
        self.error = error
    def __reduce__(self):
        raise self.error

gm = torch.fx.symbolic_trace(torch.nn.Identity())
pickler = FxGraphCachePickler(gm)
cycle = []
cycle.append(cycle)
report = {}

def attempt(name, obj):
    try:
        pickler.dumps(obj)
        report[name] = {"raised": None}
    except BaseException as error:
        frames = traceback.extract_tb(error.__traceback__)
        report[name] = {
            "raised": type(error).__name__,
            "cause": type(error.__cause__).__name__ if error.__cause__ else None,
            "cause_message": str(error.__cause__) if error.__cause__ else None,
            "dumps_frames": [[f.filename, f.lineno, f.line] for f in frames if f.name == "dumps"],
        }

attempt("cycle", {"config": cycle})
attempt("ctypes", ctypes.pointer(ctypes.c_int(1)))
attempt("keyerror", Raises(KeyError("k")))
attempt("pybind11", torch.ops.aten.add.default)  # a real pybind11-backed object: "... is not pickleable."
attempt("runtimeerror", Raises(RuntimeError("some other failure")))
report["next_object_ok"] = pickler.dumps({"a": 1}) == FxGraphCachePickler(gm).dumps({"a": 1})
report["warnings_logged"] = records.count("Failed to pickle cache key")
if sys.argv[1] == "astpatch":
    report["outcomes"] = [o.as_dict() for o in astpatch.applied()]
report["libcst_imported"] = "libcst" in sys.modules
print(json.dumps(report))
'''

# A real torch.compile on the CPU whose FX graph cache key holds a reference cycle.
COMPILE = r'''
import json, os, sys, tempfile
if sys.argv[1] == "astpatch":
    import astpatch
    astpatch.install(cache_dir=sys.argv[2])
os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp()
import torch
import torch._inductor.config as config
from torch._dynamo.utils import counters

config.fx_graph_cache = True
config.force_disable_caches = False
cycle = []
cycle.append(cycle)
config.aot_inductor.metadata = {"cycle": cycle}  # part of the FX graph cache key; unused on the CPU path

def f(x):
    return torch.sin(x) * 2 + torch.cos(x)

x = torch.randn(64)
report = {}
try:
    out = torch.compile(f, backend="inductor")(x)
    torch.testing.assert_close(out, f(x))
    report["compiled"] = True
except Exception as error:
    report["compiled"] = False
    report["error"] = f"{type(error).__name__}: {error}"[:400]
report["counters"] = dict(counters["inductor"])
print(json.dumps(report))
'''

# The patched function, inspected from inside, and the module's code compared with upstream's.
INSPECT = r"""
import inspect, json, sys, traceback, types
import astpatch
astpatch.install(cache_dir=sys.argv[1])
import torch._inductor.codecache as codecache

path = codecache.__file__
dumps = codecache.FxGraphCachePickler.dumps
with open(path, encoding="utf-8") as f:
    upstream = compile(f.read(), path, "exec", dont_inherit=True)
executed = codecache.__spec__.loader.get_code(codecache.__name__)  # the code astpatch gave the import

def tree(code, prefix=""):
    out = {}
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            name = f"{prefix}{const.co_name}@{const.co_firstlineno}"
            out[name] = const
            out.update(tree(const, name + "."))
    return out

def line_numbers(code):
    return {line for _, _, line in code.co_lines()}

plain, patched = tree(upstream), tree(executed)
try:
    dumps(codecache.FxGraphCachePickler(__import__("torch").fx.symbolic_trace(__import__("torch").nn.Identity())),
          type("R", (), {"__reduce__": lambda self: (_ for _ in ()).throw(KeyError("k"))})())
    frames = []
except KeyError as error:
    frames = [[f.filename, f.name] for f in traceback.extract_tb(error.__traceback__)]
print(json.dumps({
    "file": path,
    "co_filename": dumps.__code__.co_filename,
    "function_type": type(dumps).__name__,
    "wrapped": hasattr(dumps, "__wrapped__"),
    "qualname": dumps.__qualname__,
    "firstlineno": dumps.__code__.co_firstlineno,
    "source": inspect.getsource(dumps),
    "same_code_objects": sorted(plain) == sorted(patched),
    "same_besides_dumps": sorted(n for n in plain if ".dumps@" not in n) == sorted(n for n in patched if ".dumps@" not in n),
    "count": len(plain),
    "differing": sorted(n for n in plain if n in patched and plain[n] != patched[n]),
    "only_upstream": sorted(set(plain) - set(patched)),
    "only_patched": sorted(set(patched) - set(plain)),
    "file_lines": sum(1 for _ in open(path, encoding="utf-8")),
    "differing_lines": sorted(n for n in plain if n in patched and list(plain[n].co_lines()) != list(patched[n].co_lines())),
    "moved_lines": sorted(n for n in plain if n in patched and line_numbers(plain[n]) != line_numbers(patched[n])),
    "module_level_equal": executed.co_code == upstream.co_code and list(executed.co_lines()) == list(upstream.co_lines()),
    "dumps_is_executed": dumps.__code__ == next(c for n, c in patched.items() if n.startswith("FxGraphCachePickler@") and n.rsplit(".", 1)[-1].startswith("dumps@")),
    "getsourcelines_start": inspect.getsourcelines(dumps)[1],
    "frames": frames,
    "outcomes": [o.as_dict() for o in astpatch.applied()],
    "libcst_imported": "libcst" in sys.modules,
}))
"""

# torch imported first, astpatch installed afterwards: the live function gets the patched code.
LATE = r"""
import json, sys
import torch
from torch._inductor.codecache import BypassFxGraphCache, FxGraphCachePickler
dumps_before = FxGraphCachePickler.dumps
import astpatch
astpatch.install(cache_dir=sys.argv[1])
pickler = FxGraphCachePickler(torch.fx.symbolic_trace(torch.nn.Identity()))
cycle = []
cycle.append(cycle)
try:
    pickler.dumps(cycle)
    raised = None
except Exception as error:
    raised = [type(error).__name__, type(error.__cause__).__name__]
print(json.dumps({
    "same_function": FxGraphCachePickler.dumps is dumps_before,
    "raised": raised,
    "outcomes": [o.as_dict() for o in astpatch.applied()],
}))
"""

# A tiny torch.compile on the CPU with the local FX graph and AOTAutograd caches on, in the
# TORCHINDUCTOR_CACHE_DIR of the environment (see inductor_env): what the caches did, whether the
# wrapper code inductor ran (read on a hit too) has the marker line, and torch_key().
# argv: how astpatch comes in ("none": not at all; "install": install() before torch is imported;
# "late": torch and its codecache imported and torch_key() memoised before install()), astpatch's
# cache directory, then the rule files to install besides the shipped ones.
KEYED_COMPILE = r'''
import json, sys, time
started = time.monotonic()
how, cache, rules = sys.argv[1], sys.argv[2], sys.argv[3:]
report = {}
if how == "install":
    import astpatch
    astpatch.install(rules=rules, cache_dir=cache)
import torch
import torch._inductor.codecache as codecache
if how == "late":
    report["key_before_install"] = codecache.torch_key().hex()
    report["wrapper_imported_before_install"] = "torch._inductor.codegen.wrapper" in sys.modules
    import astpatch
    astpatch.install(rules=rules, cache_dir=cache)
import torch._functorch.config as functorch_config
import torch._inductor.config as config
from torch._dynamo.utils import counters
from torch._inductor.utils import run_and_get_code

config.fx_graph_cache = True
config.fx_graph_remote_cache = False
config.force_disable_caches = False
functorch_config.enable_autograd_cache = True
functorch_config.enable_remote_autograd_cache = False
# Computed before the compile imports inductor's code generation (a rule there is not applied yet).
report["torch_key"] = codecache.torch_key().hex()

def f(x):
    return torch.sin(x) * 2 + x

x = torch.randn(16)
out, codes = run_and_get_code(torch.compile(f, backend="inductor"), x)
torch.testing.assert_close(out, f(x))
codecache.torch_key.clear()  # computed again, now that every module the compile needs is imported
report.update({
    "torch_key_after_compile": codecache.torch_key().hex(),
    "fxgraph": {k: v for k, v in counters["inductor"].items() if k.startswith("fxgraph_cache")},
    "autograd": {k: v for k, v in counters["aot_autograd"].items() if k.startswith("autograd_cache")},
    "codes": len(codes),
    "marked": sum("# astpatch-marker" in code for code in codes),
    "outcomes": [o.as_dict() for o in astpatch.applied()] if how != "none" else None,
    "astpatch_imported": "astpatch" in sys.modules,
    "seconds": round(time.monotonic() - started, 1),
})
print(json.dumps(report))
'''


def inductor_env(cache_dir: str) -> dict[str, str]:
    """The environment of a compile that must use the local caches in `cache_dir`: no inductor or
    compile settings from outside the test (TORCHINDUCTOR_FORCE_DISABLE_CACHES would win over the
    program's config), the FX graph and AOTAutograd caches forced on, and no compile workers
    (one process, and seconds saved)."""
    from conftest import clean_env

    env = {k: v for k, v in clean_env().items() if not k.startswith(("TORCHINDUCTOR_", "TORCH_COMPILE_"))}
    env.update(TORCHINDUCTOR_CACHE_DIR=cache_dir, TORCHINDUCTOR_FX_GRAPH_CACHE="1", TORCHINDUCTOR_AUTOGRAD_CACHE="1",
               TORCHINDUCTOR_COMPILE_THREADS="1")
    return env
