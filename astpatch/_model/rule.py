"""Rules: one fix for one function, declared as data.

Declaring a rule imports neither libcst nor packaging: rule files are loaded by `install()`,
which runs at start-up. The gate is checked (with packaging) only when the target module is
imported.
"""

from __future__ import annotations

from .edit import Edit

_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-")
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def valid_rule_id(text: object) -> bool:
    return isinstance(text, str) and bool(text) and text[0] not in "._-" and set(text) <= _ID_CHARS


def _dotted(text: object) -> bool:
    return isinstance(text, str) and all(part.isidentifier() for part in text.split("."))


def split_gate(gate: str) -> tuple[str, str] | None:
    """`torch>=2.10` -> ("torch", ">=2.10"); None when it does not start with a distribution name."""
    gate = gate.strip()
    end = 0
    while end < len(gate) and gate[end] in _NAME_CHARS:
        end += 1
    name = gate[:end]
    if not name or not name[0].isalnum() or not name[-1].isalnum():
        return None
    return name, gate[end:].strip()


def gate_problem(gate: str) -> str | None:
    """Why `gate` is not a distribution name and a PEP 440 specifier, or None. Imports packaging."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    split = split_gate(gate)
    if split is None:
        return f"{gate!r} does not start with a distribution name"
    try:
        SpecifierSet(split[1])
    except InvalidSpecifier:
        return f"{split[1]!r} is not a PEP 440 specifier"
    return None


class RuleError(ValueError):
    """A rule is declared wrongly."""


def _check_params(where: str, edit: Edit) -> None:
    """An edit kind's `params()` must give plain data: it is part of the cache key."""
    kind = type(edit).__name__
    try:
        params = edit.params()
    except Exception as error:
        raise RuleError(f"{where}: the edit kind {kind}'s params() raised {type(error).__name__}: {error}; "
                        "an edit kind must return its parameters as a dict of plain data") from None
    if not isinstance(params, dict):
        raise RuleError(f"{where}: the edit kind {kind}'s params() returned {type(params).__name__}, "
                        "not a dict of its parameters as plain data")


class Change:
    """One part of a rule: an edit on one scope of one module.

    - `module`: the module it changes (`torch._inductor.codecache`).
    - `scope`: the qualified name of the function, method or class the edit works on
      (`FxGraphCachePickler.dumps`, `Scheduler`), or "" for the module's top level (imports,
      helpers, config entries).
    - `edit`: an `Edit`; each kind says which scopes it works on (`Edit.scopes`).
    """

    __slots__ = ("module", "scope", "edit")

    def __init__(self, *, module: str, edit: Edit, scope: str = "") -> None:
        where = f"the change of {module!r} at {scope or 'the top level'!r}"
        if not _dotted(module):
            raise RuleError(f"{where}: module must be a dotted name, got {module!r}")
        if not isinstance(scope, str) or (scope and not _dotted(scope)):
            raise RuleError(f"{where}: scope must be a dotted name or '' (the module's top level), got {scope!r}")
        if not isinstance(edit, Edit):
            raise RuleError(f"{where}: edit must be an astpatch edit (such as ApplyHunks), got {edit!r}")
        _check_params(where, edit)
        self.module = module
        self.scope = scope
        self.edit = edit

    @classmethod
    def _checked(cls, module: str, scope: str, edit: Edit) -> Change:
        """A change whose module, scope and edit (params() included) the caller has checked in its own
        words: a one-function Rule, so that an edit's params() runs once per declaration."""
        change = cls.__new__(cls)
        change.module = module
        change.scope = scope
        change.edit = edit
        return change

    @property
    def where(self) -> str:
        """`module:scope`, for messages."""
        return f"{self.module}:{self.scope or '<top level>'}"

    def fingerprint(self) -> str:
        return f"{self.module}|{self.scope}|{self.edit.fingerprint()}"

    def __repr__(self) -> str:
        return f"Change(module={self.module!r}, scope={self.scope!r}, edit={self.edit!r})"


class Rule:
    """One upstream fix: one or more changes, applied all together or not at all.

    - `id`: says what the rule fixes, in lower case with dashes (`torch-...-valueerror`).
    - `summary`: one line.
    - `upstream`: where upstream fixed it: issue, pull request, first fixed release.
    - `written_for`: optional provenance, the distribution and version the rule was written
      against (`torch 2.10.0`); `astpatch check` shows it beside the version it checks. It does not
      change the code a rule produces, so it is not part of the fingerprint.
    - `gate`: optional distribution and PEP 440 specifier (`torch>=2.10`). See `astpatch._model.gate`
      for how source and vendor builds' versions are compared.
    - the change itself, either as `module`, `target` (a function's qualified name) and `edit`,
      for a fix of one function; or as `changes`, a list of `Change`, for a fix that spans
      functions, classes, module top levels and modules.
    """

    __slots__ = ("id", "summary", "changes", "upstream", "gate", "written_for", "origin", "_fingerprint")

    def __init__(
        self,
        *,
        id: str,
        summary: str,
        upstream: str,
        module: str | None = None,
        target: str | None = None,
        edit: Edit | None = None,
        changes: list[Change] | tuple[Change, ...] | None = None,
        gate: str | None = None,
        written_for: str | None = None,
    ) -> None:
        where = f"rule {id!r}"
        if not valid_rule_id(id):
            raise RuleError(f"rule id {id!r} must be lower case letters, digits, '.', '_' and '-'")
        if not isinstance(summary, str) or not summary.strip() or "\n" in summary.strip():
            raise RuleError(f"{where}: summary must be one non-empty line")
        if changes is not None:
            if module is not None or target is not None or edit is not None:
                raise RuleError(f"{where}: give either changes or module, target and edit, not both")
            if not isinstance(changes, (list, tuple)) or not changes or \
                    not all(isinstance(c, Change) for c in changes):
                raise RuleError(f"{where}: changes must be a non-empty list of astpatch.Change")
        else:
            for name, value in (("module", module), ("target", target)):
                if not _dotted(value):
                    raise RuleError(f"{where}: {name} must be a dotted name, got {value!r}")
            if not isinstance(edit, Edit):
                raise RuleError(f"{where}: edit must be an astpatch edit (such as AddExceptTypes), got {edit!r}")
            _check_params(where, edit)
            changes = [Change._checked(module, target, edit)]  # type: ignore[arg-type]
        if not isinstance(upstream, str) or not upstream.strip():
            raise RuleError(f"{where}: upstream must say where upstream fixed it (issue, PR, release)")
        if gate is not None:
            if not isinstance(gate, str) or split_gate(gate) is None:
                raise RuleError(f"{where}: gate must read like 'torch>=2.10', got {gate!r}")
        if written_for is not None and (not isinstance(written_for, str) or not written_for.strip()
                                        or "\n" in written_for.strip()):
            raise RuleError(f"{where}: written_for must be one line naming a distribution and version, such as "
                            f"'torch 2.10.0', got {written_for!r}")
        self.id = id
        self.summary = summary.strip()
        self.changes = tuple(changes)
        self.upstream = upstream.strip()
        self.gate = gate.strip() if gate else None
        self.written_for = written_for.strip() if written_for else None
        self.origin = "<declared in code>"  # the rule file, once loaded from one
        self._fingerprint: str | None = None

    @property
    def modules(self) -> tuple[str, ...]:
        """The modules the rule changes, in the order of its changes."""
        return tuple(dict.fromkeys(c.module for c in self.changes))

    @property
    def key_package(self) -> str | None:
        """For a rule that only makes a cache key carry the rules applied to a package (see
        `astpatch._model.cache_keys`), that package; None for any other rule."""
        from .cache_keys import KeyWithRules

        packages = {c.edit.package for c in self.changes if isinstance(c.edit, KeyWithRules)}
        return packages.pop() if len(packages) == 1 and all(isinstance(c.edit, KeyWithRules) for c in self.changes) else None

    @property
    def module(self) -> str:
        """The first module the rule changes."""
        return self.changes[0].module

    @property
    def target(self) -> str:
        """The scope of the rule's first change (for a one-function rule, the function)."""
        return self.changes[0].scope

    @property
    def edit(self) -> Edit:
        """The edit of the rule's first change."""
        return self.changes[0].edit

    def changes_in(self, module: str) -> list[Change]:
        return [c for c in self.changes if c.module == module]

    @property
    def gate_distribution(self) -> str | None:
        """The distribution whose version the gate tests, or None without a gate."""
        return None if self.gate is None else split_gate(self.gate)[0]  # type: ignore[index]

    @property
    def gate_specifier(self) -> str:
        return "" if self.gate is None else split_gate(self.gate)[1]  # type: ignore[index]

    def fingerprint(self) -> str:
        """Everything about the rule that can change the code it produces. Made when a key first
        needs it, not when the rule is declared (install() loads rules that no import may meet),
        and kept: a rule is data, not changed once declared."""
        if self._fingerprint is None:
            self._fingerprint = f"{self.id}|{self.gate}|{'|'.join(c.fingerprint() for c in self.changes)}"
        return self._fingerprint

    def without_gate(self) -> Rule:
        """The same rule without its gate: what its edits do to a source, whatever the version."""
        import copy

        found = copy.copy(self)
        found.gate = None
        found._fingerprint = None  # the gate is part of it
        return found

    def __repr__(self) -> str:
        return f"Rule(id={self.id!r}, modules={list(self.modules)!r}, gate={self.gate!r})"
