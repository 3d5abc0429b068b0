"""`key_with_rules`: the value a cache key that depends on patched code takes (see
`astpatch._model.cache_keys`, whose edit makes a library's key function call it).

A rule counts when it is applied: in a module already imported, as its outcome says; in one not
imported yet, as the import would decide it (the cache entry, or a rewrite that the import then
finds cached). Rules that are `already-fixed`, `not-applicable` or that failed leave upstream's
code in place, so they do not count, and with no applied rule the key is upstream's own value.
"""

from __future__ import annotations

from .._base import outcomes as oc
from . import installation

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .session import Session


def key_with_rules(value: object, package: str) -> object:
    """`value` when no rule is applied to a module of `package` in this process. Otherwise the
    SHA-256 of it and of the applied rules' fingerprints: bytes for bytes, a hex string for a
    string, and a tuple gets the hex digest appended; a value of another type cannot carry the
    rules and is returned as it is, with one warning."""
    made = installation.latest()
    fingerprints = applied_fingerprints(made.session, package, evaluate=made.active) if made is not None else []
    if not fingerprints:
        return value
    import hashlib

    if not isinstance(value, (bytes, str, tuple)):
        if package not in _untyped:
            _untyped.add(package)
            made.session.report_problem(  # type: ignore[union-attr]
                f"astpatch: a key of {package}'s caches is a {type(value).__name__}, which cannot carry the rules "
                f"applied to {package}; the caches keyed by it may serve artifacts made without them.")
        return value
    data = value if isinstance(value, bytes) else value.encode("utf-8") if isinstance(value, str) else repr(value).encode()
    digest = hashlib.sha256(data)
    for fingerprint in fingerprints:
        digest.update(b"\0astpatch\0" + fingerprint.encode("utf-8"))
    if isinstance(value, bytes):
        return digest.digest()
    return digest.hexdigest() if isinstance(value, str) else (*value, digest.hexdigest())


_untyped: set[str] = set()  # packages a key of another type was met for (warned once)


def applied_fingerprints(session: Session, package: str, evaluate: bool = True) -> list[str]:
    """The fingerprints of the rules applied to modules of `package`, sorted; with `evaluate`, those
    that will be applied when a module not imported yet is imported too (an installation that is
    no longer active patches no further import)."""
    recorded = {(o.rule_id, o.module): o for o in oc.recorded()}
    found = []
    for rule in session.rules.rules_in_package(package):
        outcome = next((recorded[(rule.id, m)] for m in rule.modules if (rule.id, m) in recorded), None)
        if outcome is None and evaluate:
            outcome = session.outcome_before_import(rule)
        if outcome is not None and outcome.status == oc.APPLIED:
            found.append(rule.fingerprint())
    return sorted(found)
