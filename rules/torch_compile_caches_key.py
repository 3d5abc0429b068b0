"""torch's compile caches key their artifacts by the astpatch rules applied to torch.

torch keys the FX graph cache, the AOTAutograd cache, the autotune cache and the compiled kernels
by `torch._inductor.codecache.torch_key()`: a hash of torch's version and of its source files as
they are on disk. astpatch changes torch's code in memory only, so without this rule a process
with a rule that changes what inductor generates could be served an artifact compiled without
it (and a process without the rule one compiled with it), until the cache is cleared by hand.

This rule passes `torch_key()`'s result through `astpatch.key_with_rules(value, "torch")`:
unchanged when no rule is applied to a torch module (rules that are already-fixed or
not-applicable leave upstream's code, so the key stays upstream's and artifacts are shared with
processes without astpatch), otherwise a hash of it and of the applied rules' fingerprints. It
is in force only while another rule targets a torch module. inductor's compile workers receive
the parent's key, so they agree with it. When torch was imported before `install()`, the live
`torch_key` gets the edited code and its memoised value is dropped (`torch_key.clear()`).

It is astpatch's own rule, not a backport: upstream computes the key from the files on disk,
which is right for torch alone.
"""

from astpatch import KeyWithRules, Rule

RULE = Rule(
    id="torch-compile-caches-key-by-rules",
    summary="torch's compile caches (FX graph, AOTAutograd, autotune, kernels) key artifacts by the rules applied to torch",
    module="torch._inductor.codecache",
    target="torch_key",
    edit=KeyWithRules(package="torch", reset="clear"),
    upstream=(
        "astpatch's own rule (no upstream change): torch_key() hashes torch's source files on disk "
        "(torch._inductor.codecache), which astpatch leaves unchanged"
    ),
)
