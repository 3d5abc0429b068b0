"""The edit interface: what a rule changes in its target function, declared as data.

An edit is declared when its rule file is loaded, which must stay cheap, so nothing here (nor in
the shipped kinds) imports libcst at module level; `apply()` imports it when a rewrite happens.

Every edit kind implements:

- `kind`: a short name, used in messages and in the rule's fingerprint.
- `params()`: the edit's parameters as plain data. With `kind`, and for kinds that do not ship
  with astpatch the code that defines them, they make `fingerprint()`, which is part of the
  cache key: changing a rule's edit, or a custom kind's code, invalidates cached code.
- `apply(target)`: receives the target function as a libcst `FunctionDef` (parsed from that
  function's own source, so formatting and comments survive) and returns an `EditResult`:
  `applied` with the new node (or text), `already_fixed` when the source already has the fixed
  shape, or `no_match` when the source is neither the shape the edit fixes nor the fixed one.

The engine treats all kinds alike, so a new kind is a new subclass and nothing else;
`astpatch.testing.assert_edit` tests one as a before/after pair.
"""

from __future__ import annotations

import abc

from .._base.outcomes import ALREADY_FIXED, APPLIED

TYPE_CHECKING = False  # typing is not imported at run time: rule files load at start-up
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    import libcst as cst

NO_MATCH = "no-match"

__all__ = ["ALREADY_FIXED", "APPLIED", "NO_MATCH", "Edit", "EditResult", "Target", "dotted_name"]


class Target:
    """The function an edit works on: as a libcst node, and as its exact source text.

    `code` is the function as it stands in the file (after any earlier rule's edit), from its
    first decorator to its last line, at its original indentation. `node` is parsed from it by
    libcst on first use (`parse`), so an edit that works on the text costs no libcst import.
    """

    __slots__ = ("_node", "_parse", "qualname", "module", "code")

    def __init__(self, node: cst.FunctionDef | None, qualname: str, module: str, code: str = "",
                 parse: Callable[[], cst.FunctionDef] | None = None) -> None:
        self._node = node
        self._parse = parse
        self.qualname = qualname
        self.module = module
        self.code = code

    @property
    def node(self) -> cst.FunctionDef:
        if self._node is None and self._parse is not None:
            self._node = self._parse()
        return self._node  # type: ignore[return-value]


class EditResult:
    """What an edit made of its target: a value, never an exception.

    An applied edit returns the new function either as a libcst node or, for edits that work
    on text, as source code (`applied_code`).
    """

    __slots__ = ("status", "node", "reason", "code")

    def __init__(self, status: str, node: cst.FunctionDef | None, reason: str, code: str | None = None) -> None:
        self.status = status
        self.node = node
        self.reason = reason
        self.code = code

    @classmethod
    def applied(cls, node: cst.FunctionDef, reason: str = "") -> EditResult:
        return cls(APPLIED, node, reason)

    @classmethod
    def applied_code(cls, code: str, reason: str = "") -> EditResult:
        return cls(APPLIED, None, reason, code)

    @classmethod
    def already_fixed(cls, reason: str) -> EditResult:
        return cls(ALREADY_FIXED, None, reason)

    @classmethod
    def no_match(cls, reason: str) -> EditResult:
        return cls(NO_MATCH, None, reason)

    def __repr__(self) -> str:
        return f"EditResult({self.status!r}, reason={self.reason!r})"


class Edit(abc.ABC):
    """Base class of the edit kinds: subclass it, set `kind`, implement `params()` and `apply()`."""

    kind = "edit"
    # What the edit can work on: "function" (a libcst FunctionDef in `Target.node`), "class" (a
    # class body) and "module" (the top level), the last two as text in `Target.code`.
    scopes: tuple[str, ...] = ("function",)

    @abc.abstractmethod
    def params(self) -> dict[str, Any]:
        """The edit's parameters as plain data (part of the cache key)."""

    @abc.abstractmethod
    def apply(self, target: Target) -> EditResult:
        """The edited function, or why not: see `EditResult`."""

    def fingerprint(self) -> str:
        return f"{self.kind}{sorted(self.params().items())!r}{_code_identity(type(self))}"

    def live_applied(self, holder: object) -> None:  # noqa: B027 - a hook with nothing to do by default
        """Called after the edited function of a module imported before `install()` got its new
        code (`holder` is what the module's attribute holds: the function, or a decorator's
        object around it)."""

    def describe(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{self.kind}({args})"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.params().items())})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Edit) and type(self) is type(other) and self.fingerprint() == other.fingerprint()

    def __hash__(self) -> int:
        return hash(self.fingerprint())


# The shipped kinds are covered by astpatch's version, which is in every cache key.
_SHIPPED = __name__.rpartition(".")[0] + "."
_identities: dict[type, str] = {}


def _code_identity(kind: type) -> str:
    """A digest of the code of a custom edit kind: the files its methods come from.

    A custom kind's `apply()` can change without its parameters changing; the old cached code
    must not be served then. Hashing the defining files covers the helpers beside the class too.
    Computed once per class and process.
    """
    known = _identities.get(kind)
    if known is not None:
        return known
    import _imp

    parts: list[bytes] = []
    for cls in kind.__mro__:
        if cls is Edit or cls is object or cls.__module__.startswith(_SHIPPED):
            continue
        for value in vars(cls).values():
            code = getattr(getattr(value, "__func__", value), "__code__", None)
            if code is None:
                continue
            try:
                with open(code.co_filename, "rb") as f:
                    parts.append(f.read())
            except OSError:  # no file (defined in a string): its bytecode and constants
                parts.append(code.co_code + repr(code.co_consts).encode() + repr(code.co_names).encode())
    identity = _imp.source_hash(1, b"\0".join(sorted(set(parts)))).hex() if parts else ""
    _identities[kind] = identity
    return identity


def dotted_name(text: str, what: str) -> str:
    parts = text.split(".")
    if not text or not all(p.isidentifier() for p in parts):
        raise ValueError(f"{what} must be a dotted name such as 'ValueError' or 'pickle.PicklingError', got {text!r}")
    return text
