"""torch 2.10: a pybind11 object in the FX graph cache key fails torch.compile with RuntimeError.

pybind11 objects that cannot be pickled raise `RuntimeError: <pybind11_builtins...> is not
pickleable.` (an `OpOverload` such as `torch.ops.aten.add.default` does). torch 2.10's
`FxGraphCachePickler.dumps` converts TypeError, AttributeError and PicklingError into
`BypassFxGraphCache` but lets that RuntimeError escape, so `torch.compile` fails instead of
skipping the cache. torch 2.11 added an except clause that converts exactly these RuntimeErrors
and re-raises every other one; this rule adds the same clause, word for word.

With torch-fxgraph-cache-key-valueerror, the two rules turn 2.10's `dumps` into 2.11's. The
clause that raises BypassFxGraphCache is the one that also catches TypeError (after this rule,
the RuntimeError clause raises it too). Releases with the fix (2.11 and later; from 2.13 both
clauses call a helper instead of raising) are recognised by their source as already fixed.
"""

from astpatch import AddExceptClause, Rule

RULE = Rule(
    id="torch-fxgraph-cache-key-pybind11-runtimeerror",
    summary="Skip the FX graph cache, instead of failing torch.compile, when a pybind11 object in its key is not pickleable",
    module="torch._inductor.codecache",
    target="FxGraphCachePickler.dumps",
    gate="torch>=2.10",
    written_for="torch 2.10.0",
    edit=AddExceptClause(
        clause='''
            except RuntimeError as e:
                # pybind11 raises RuntimeError with message like:
                # "<pybind11_builtins... object at 0x...> is not pickleable."
                if "pybind11" in str(e) and "is not pickleable" in str(e):
                    log.warning("Failed to pickle cache key", exc_info=True)
                    raise BypassFxGraphCache("Failed to pickle cache key") from e
                raise
        ''',
        after_clause_raising="BypassFxGraphCache",
        catching="TypeError",
    ),
    upstream=(
        "pytorch/pytorch#173577 (Handle RuntimeError in FxGraphCachePickler.dumps() for unpickleable "
        "pybind11 objects; addresses pytorch/pytorch#164682), first released in torch 2.11.0"
    ),
)
