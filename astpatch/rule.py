"""Rules: one fix for one function, declared as data.

Declaring a rule imports neither libcst nor packaging: rule files are loaded by `install()`,
which runs at start-up. The gate is checked (with packaging) only when the target module is
imported.
"""

from __future__ import annotations

import re

from .edits import Edit

_RULE_ID = re.compile(r"[a-z0-9][a-z0-9._-]*\Z")
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\Z")
_GATE = re.compile(r"\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(.*?)\s*\Z", re.S)


class RuleError(ValueError):
    """A rule is declared wrongly."""


class Rule:
    """A fix for one function of one module.

    - `id`: says what the rule fixes, in lower case with dashes (`torch-...-valueerror`).
    - `summary`: one line.
    - `module`: the module the target lives in (`torch._inductor.codecache`).
    - `target`: the function's qualified name in that module (`FxGraphCachePickler.dumps`).
    - `edit`: an `Edit` (see `astpatch.edits`).
    - `upstream`: where upstream fixed it: issue, pull request, first fixed release.
    - `gate`: optional distribution and PEP 440 specifier (`torch>=2.10`). See `astpatch.gate`
      for how source and vendor builds' versions are compared.
    """

    __slots__ = ("id", "summary", "module", "target", "edit", "upstream", "gate", "origin")

    def __init__(
        self,
        *,
        id: str,
        summary: str,
        module: str,
        target: str,
        edit: Edit,
        upstream: str,
        gate: str | None = None,
    ) -> None:
        where = f"rule {id!r}"
        if not isinstance(id, str) or not _RULE_ID.match(id):
            raise RuleError(f"rule id {id!r} must be lower case letters, digits, '.', '_' and '-'")
        if not isinstance(summary, str) or not summary.strip() or "\n" in summary.strip():
            raise RuleError(f"{where}: summary must be one non-empty line")
        for name, value in (("module", module), ("target", target)):
            if not isinstance(value, str) or not _DOTTED.match(value):
                raise RuleError(f"{where}: {name} must be a dotted name, got {value!r}")
        if not isinstance(edit, Edit):
            raise RuleError(f"{where}: edit must be an astpatch edit (such as AddExceptTypes), got {edit!r}")
        if not isinstance(upstream, str) or not upstream.strip():
            raise RuleError(f"{where}: upstream must say where upstream fixed it (issue, PR, release)")
        if gate is not None:
            if not isinstance(gate, str) or not _GATE.match(gate):
                raise RuleError(f"{where}: gate must read like 'torch>=2.10', got {gate!r}")
        self.id = id
        self.summary = summary.strip()
        self.module = module
        self.target = target
        self.edit = edit
        self.upstream = upstream.strip()
        self.gate = gate.strip() if gate else None
        self.origin = "<declared in code>"  # the rule file, once loaded from one

    @property
    def gate_distribution(self) -> str | None:
        """The distribution whose version the gate tests, or None without a gate."""
        if self.gate is None:
            return None
        match = _GATE.match(self.gate)
        assert match is not None  # checked in __init__
        return match.group(1)

    @property
    def gate_specifier(self) -> str:
        if self.gate is None:
            return ""
        match = _GATE.match(self.gate)
        assert match is not None
        return match.group(2)

    def fingerprint(self) -> str:
        """Everything about the rule that can change the code it produces."""
        return f"{self.id}|{self.module}|{self.target}|{self.gate}|{self.edit.fingerprint()}"

    def __repr__(self) -> str:
        return f"Rule(id={self.id!r}, module={self.module!r}, target={self.target!r}, gate={self.gate!r})"
