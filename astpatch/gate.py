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


def evaluate(distribution: str, specifier: str, version: str | None) -> GateResult:
    """Whether `version` of `distribution` is inside `specifier`, and why."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.version import InvalidVersion, Version

    gate = f"{distribution}{specifier}"
    if version is None:
        return GateResult(False, f"{distribution} is not installed (gate {gate})")
    try:
        spec = SpecifierSet(specifier)
    except InvalidSpecifier:
        return GateResult(False, f"the gate {gate!r} is not a valid PEP 440 specifier")
    try:
        parsed = Version(version)
    except InvalidVersion:
        return GateResult(False, f"{distribution} {version} is not a PEP 440 version; the gate {gate} cannot be checked")
    names_prerelease = any(v is not None and v.is_prerelease for v in (_as_version(s.version) for s in spec))
    compared = Version(parsed.public) if names_prerelease else Version(parsed.base_version)
    if spec.contains(compared, prereleases=True):
        return GateResult(True, f"{distribution} {version} is inside the gate {gate}")
    return GateResult(False, f"{distribution} {version} is outside the gate {gate}")


def _as_version(text: str):  # type: ignore[no-untyped-def]
    from packaging.version import InvalidVersion, Version

    try:
        return Version(text[:-2] if text.endswith(".*") else text)
    except InvalidVersion:
        return None
