"""torch 2.10: a ValueError while pickling the FX graph cache key fails torch.compile.

`FxGraphCachePickler.dumps` turns TypeError, AttributeError and PicklingError raised while
pickling a cache key into `BypassFxGraphCache` (skip the cache, keep compiling) but lets
ValueError escape. The pickler runs in fast mode, where any reference cycle in a value that goes
into the key raises `ValueError: fast mode: can't pickle cyclic objects`, and ctypes objects
holding pointers raise ValueError too; `torch.compile` then fails with BackendCompilerFailed.
torch 2.11 added ValueError to that except clause; this rule makes the same change.

torch 2.9 catches only (TypeError, AttributeError), so the gate starts at 2.10. There is no upper
bound: releases that have the fix (2.11 and later, where from 2.13 the clause calls a helper
instead of raising) are recognised by their source and reported as already fixed.
"""

from astpatch import AddExceptTypes, Rule

RULE = Rule(
    id="torch-fxgraph-cache-key-valueerror",
    summary="Skip the FX graph cache, instead of failing torch.compile, when pickling its key raises ValueError",
    module="torch._inductor.codecache",
    target="FxGraphCachePickler.dumps",
    gate="torch>=2.10",
    written_for="torch 2.10.0",
    edit=AddExceptTypes(add=("ValueError",), converts_to="BypassFxGraphCache", catching="TypeError"),
    upstream=(
        "torch 2.11.0 is the first release whose FxGraphCachePickler.dumps catches ValueError "
        "(pytorch/pytorch#176557, a later duplicate of the fix, was closed because main already had it); "
        "downstream workaround this replaces: vLLM's zen_cpu platform (vllm-project/vllm#35970)"
    ),
)
