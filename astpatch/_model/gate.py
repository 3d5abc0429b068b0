"""Version gates: does a rule's distribution version fall inside its specifier?

Source and vendor builds carry versions such as `2.10.0a0+git1234` (a source build of the
2.10 branch) or `2.10.0+cu128` (a CUDA build of 2.10.0). A plain PEP 440 check would put the
first outside `>=2.10` (a pre-release sorts before 2.10.0) and would need `--pre` semantics for
it to match anything. astpatch compares the release number instead: local labels, pre-, post-
and dev-release parts are dropped, so both builds count as 2.10.0. A gate that itself names a
pre-release (`>=2.11.0a0`) asks for the finer comparison and gets the full public version.

The gate only narrows where a rule may act: whether the code needs the fix is decided by the
edit's structural check on the source itself.
"""

from __future__ import annotations


class GateResult:
    __slots__ = ("selected", "reason")

    def __init__(self, selected: bool, reason: str) -> None:
        self.selected = selected
        self.reason = reason


_OPERATORS = ("===", "~=", "==", "!=", "<=", ">=", "<", ">")


def evaluate(distribution: str, specifier: str, version: str | None) -> GateResult:
    """Whether `version` of `distribution` is inside `specifier`, and why."""
    from packaging.version import InvalidVersion, Version

    gate = f"{distribution}{specifier}"
    if version is None:
        return GateResult(False, f"{distribution} is not installed (gate {gate})")
    try:
        parsed = Version(version)
    except InvalidVersion:
        return GateResult(False, f"{distribution} {version} is not a PEP 440 version; the gate {gate} cannot be checked")
    clauses = _release_clauses(specifier)
    if clauses is not None:
        selected = all(_release_matches(Version(parsed.base_version), op, target) for op, target in clauses)
    else:
        selected_or_none = _full_specifier(specifier, parsed)
        if selected_or_none is None:
            return GateResult(False, f"the gate {gate!r} is not a valid PEP 440 specifier")
        selected = selected_or_none
    if selected:
        return GateResult(True, f"{distribution} {version} is inside the gate {gate}")
    return GateResult(False, f"{distribution} {version} is outside the gate {gate}")


def _release_clauses(specifier: str) -> list[tuple[str, str]] | None:
    """The clauses of a specifier that compares release numbers only, or None for any other.

    This is the common case (`>=2.10,<2.11`, `==2.10.*`, `~=2.10`). It is evaluated with
    `packaging.version` alone: `packaging.specifiers` costs several milliseconds more to import
    on the cold path. Any other specifier (a pre-release, a local label, `===`, an epoch) goes to
    `packaging.specifiers` whole.
    """
    clauses = []
    for clause in specifier.split(","):
        clause = clause.strip()
        if not clause:
            continue
        op = next((o for o in _OPERATORS if clause.startswith(o)), None)
        if op is None or op == "===":
            return None
        target = clause[len(op) :].strip()
        release = target[:-2] if target.endswith(".*") and op in ("==", "!=") else target
        parts = release.split(".")
        if not parts or not all(p.isdigit() for p in parts) or (op == "~=" and len(parts) < 2):
            return None
        clauses.append((op, target))
    return clauses


def _release_matches(candidate, op: str, target: str) -> bool:  # type: ignore[no-untyped-def]
    """PEP 440 for a candidate that is a plain release and a target that is one (or a prefix)."""
    from packaging.version import Version

    if target.endswith(".*"):
        prefix = tuple(int(p) for p in target[:-2].split("."))
        release = candidate.release + (0,) * max(0, len(prefix) - len(candidate.release))
        matched = candidate.epoch == 0 and release[: len(prefix)] == prefix  # the targets have epoch 0
        return matched if op == "==" else not matched
    version = Version(target)
    if op == "~=":
        wildcard = ".".join(str(p) for p in version.release[:-1]) + ".*"
        return candidate >= version and _release_matches(candidate, "==", wildcard)
    return {
        "==": candidate == version,
        "!=": candidate != version,
        "<=": candidate <= version,
        ">=": candidate >= version,
        "<": candidate < version,
        ">": candidate > version,
    }[op]


def _full_specifier(specifier: str, parsed) -> bool | None:  # type: ignore[no-untyped-def]
    """packaging.specifiers for the specifiers _release_clauses leaves out; None if invalid."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.version import Version

    try:
        spec = SpecifierSet(specifier)
    except InvalidSpecifier:
        return None
    names_prerelease = any(v is not None and v.is_prerelease for v in (_as_version(s.version) for s in spec))
    compared = Version(parsed.public) if names_prerelease else Version(parsed.base_version)
    return spec.contains(compared, prereleases=True)


def _as_version(text: str):  # type: ignore[no-untyped-def]
    from packaging.version import InvalidVersion, Version

    try:
        return Version(text[:-2] if text.endswith(".*") else text)
    except InvalidVersion:
        return None
