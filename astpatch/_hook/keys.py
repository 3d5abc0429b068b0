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


def key_with_rules(value: bytes | str, package: str) -> bytes | str:
    """`value` when no rule is applied to a module of `package` in this process; otherwise the
    SHA-256 of it and of the applied rules' fingerprints (bytes for bytes, hex for a string)."""
    current = installation.current()
    fingerprints = applied_fingerprints(current.session, package) if current is not None else []
    if not fingerprints:
        return value
    import hashlib

    digest = hashlib.sha256(value if isinstance(value, bytes) else str(value).encode("utf-8"))
    for fingerprint in fingerprints:
        digest.update(b"\0astpatch\0" + fingerprint.encode("utf-8"))
    return digest.digest() if isinstance(value, bytes) else digest.hexdigest()


def applied_fingerprints(session: Session, package: str) -> list[str]:
    """The fingerprints of the rules applied (or to be applied at import) to modules of `package`, sorted."""
    recorded = {(o.rule_id, o.module): o for o in oc.recorded()}
    found = []
    for rule in session.rules.rules_in_package(package):
        outcome = next((recorded[(rule.id, m)] for m in rule.modules if (rule.id, m) in recorded), None)
        if outcome is None:
            outcome = session.outcome_before_import(rule)
        if outcome is not None and outcome.status == oc.APPLIED:
            found.append(rule.fingerprint())
    return sorted(found)
