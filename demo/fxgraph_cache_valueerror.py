"""torch 2.10: torch.compile fails when the FX graph cache key cannot be pickled; astpatch fixes it.

Run with `python3 tools/demo.py`, which creates (once) a virtual environment with torch 2.10.0 and
astpatch and runs this script in it. Three steps:

1. A small torch.compile on the CPU whose FX graph cache key holds a reference cycle (an inductor
   config value). The cache pickler runs in fast mode, where a cycle raises ValueError, which
   torch 2.10 lets escape: torch.compile fails.
2. The same program with `astpatch.install()` first: the pickling error now skips the cache,
   as in torch 2.11, and the program gets its compiled result.
3. `astpatch diff`: exactly what astpatch changed in torch's source.

It needs a C++ compiler (torch.compile's CPU backend builds its kernels with one) and says what to
install when there is none.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile

PROGRAM = r'''
import json, os, sys, tempfile
if sys.argv[1] == "with-astpatch":
    import astpatch
    astpatch.install(cache_dir=sys.argv[2])
os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp()
import torch
import torch._inductor.config as config
from torch._dynamo.utils import counters

config.fx_graph_cache = True
cycle = []
cycle.append(cycle)
config.aot_inductor.metadata = {"cycle": cycle}

def f(x):
    return torch.sin(x) * 2 + torch.cos(x)

x = torch.randn(64)
try:
    out = torch.compile(f)(x)
    torch.testing.assert_close(out, f(x))
    result = {"ok": True, "bypasses": counters["inductor"]["fxgraph_cache_bypass"]}
except Exception as error:
    result = {"ok": False, "error": f"{type(error).__name__}: {str(error).strip().splitlines()[1]}"}
if sys.argv[1] == "with-astpatch":
    result["rules"] = [f"{o.rule_id}: {o.status}" for o in astpatch.applied()]
print(json.dumps(result))
'''


def run(*args: str) -> dict:
    completed = subprocess.run([sys.executable, "-c", PROGRAM, *args], capture_output=True, text=True)
    if completed.returncode != 0 or not completed.stdout.strip():
        sys.stderr.write(completed.stderr)
        raise SystemExit(f"the demo program itself failed (exit {completed.returncode})")
    return json.loads(completed.stdout.splitlines()[-1])


def main() -> int:
    from prerequisites import compiler_problem  # beside this script

    if problem := compiler_problem():
        print(problem, file=sys.stderr)
        return 1
    import warnings

    warnings.filterwarnings("ignore", message="Failed to initialize NumPy")  # torch without numpy
    import torch

    print(f"torch {torch.__version__}, on the CPU\n")
    print("1) torch.compile, FX graph cache on, a reference cycle in the cache key; no astpatch")
    plain = run("without-astpatch")
    print(f"   failed: {plain['error']}" if not plain["ok"] else "   compiled (unexpected on torch 2.10)")

    print("\n2) the same program, with astpatch.install() first")
    with tempfile.TemporaryDirectory() as cache:
        fixed = run("with-astpatch", cache)
    if fixed["ok"]:
        print(f"   compiled; result equals eager; FX graph cache bypassed {fixed['bypasses']} time(s)")
    else:
        print(f"   failed: {fixed['error']}")
    print(f"   astpatch.applied(): {', '.join(fixed['rules'])}")

    print("\n3) what astpatch changed: `astpatch diff`\n", flush=True)
    subprocess.run([sys.executable, "-m", "astpatch", "diff"], check=True)
    return 0 if (not plain["ok"] and fixed["ok"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
