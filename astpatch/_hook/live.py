"""Rules for a module that was imported before `install()`.

Its code already ran, so it cannot be rewritten at import. What can still be done without a
wrapper: give the live function the patched code object (`function.__code__ = new`). Every
reference to the function, including `from module import function` elsewhere, then runs the
fix. That is only sound when the new code has the same free variables as the old (the
function's closure cells are kept); otherwise astpatch says the module was imported too early
and how to fix the order.
"""

from __future__ import annotations

import os
import types

from .._base import outcomes as oc
from .._engine.pipeline import build
from .finder import show_patched_text

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .session import Session


def _function(module: types.ModuleType, qualname: str) -> tuple[object, types.FunctionType | None]:
    """What the module's attribute `qualname` holds, and the function defined there: the object
    itself, or one a decorator keeps (in `__wrapped__` or in its closure, as `functools` and
    hand-written caching decorators do)."""
    obj: object = module
    for part in qualname.split("."):
        if isinstance(obj, property) and part in _ACCESSORS:  # `Class.prop.setter` (see locate)
            obj = getattr(obj, _ACCESSORS[part])
            continue
        namespace = getattr(obj, "__dict__", None)
        if namespace is None or part not in namespace:
            return None, None
        obj = namespace[part]
    holder = obj
    name = qualname.rpartition(".")[2]
    accessor = isinstance(obj, property) or name in _ACCESSORS
    if isinstance(obj, property):  # `Class.prop`: its getter
        obj = obj.fget
    if accessor:  # an accessor's function has the property's name
        name = getattr(obj, "__name__", name)
    candidates = [getattr(obj, "__func__", obj)]  # staticmethod, classmethod
    for _ in range(4):  # decorators within decorators, a few deep
        for candidate in candidates:
            if isinstance(candidate, types.FunctionType) and candidate.__code__.co_name == name:
                return holder, candidate
        candidates = [inner for c in candidates for inner in _kept(c)]
    return holder, None


_ACCESSORS = {"getter": "fget", "setter": "fset", "deleter": "fdel"}


def _kept(obj: object) -> list[object]:
    """The callables a decorator's object keeps: `__wrapped__`, and its closure's functions."""
    kept = [getattr(obj, "__wrapped__", None)]
    for cell in getattr(obj, "__closure__", None) or ():
        try:
            kept.append(cell.cell_contents)
        except ValueError:  # an empty cell
            continue
    return [k for k in kept if callable(k)]


def _code_objects(code: types.CodeType):  # type: ignore[no-untyped-def]
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield const
            yield from _code_objects(const)


def _patched_code_for(module_code: types.CodeType, old: types.CodeType, spans: list[tuple]) -> types.CodeType | None:
    """The code object in the patched module that replaces `old`: same name and qualified name,
    at the same line or where its span was moved (see `astpatch.spans.Span`)."""
    lines = {old.co_firstlineno} | {moved for start, _end, _lines, moved in spans if moved and start == old.co_firstlineno}
    for code in _code_objects(module_code):
        if code.co_name == old.co_name and code.co_firstlineno in lines and \
                getattr(code, "co_qualname", None) == getattr(old, "co_qualname", None):
            return code
    return None


def patch_imported_module(session: Session, name: str, module: types.ModuleType) -> list[oc.Outcome]:
    """Apply the rules on `name` to the live functions of `module`; the outcomes say how."""
    rules = session.rules.for_module(name)
    late = f"{name} was imported before astpatch.install()"
    how_to_fix = f"Call astpatch.install() before anything imports {name}, or run the program with `astpatch run`"
    spec = getattr(module, "__spec__", None)
    path = getattr(spec, "origin", None)
    if not path or not path.endswith(".py"):
        return [oc.Outcome(r.id, name, oc.FAILED, f"{late} and is not a plain source file. {how_to_fix}") for r in rules]
    try:
        with open(path, "rb") as f:
            source = f.read()
            status = os.fstat(f.fileno())  # after the read: what vouches for these bytes
    except OSError as error:
        return [oc.Outcome(r.id, name, oc.FAILED, f"{late} and its source cannot be read ({error}). {how_to_fix}")
                for r in rules]
    from .._engine.upstream import upstream_code

    # The code of these very bytes, not whatever __pycache__ holds (the import system trusts a
    # .pyc by mtime and size, or an unchecked-hash one blindly): the result is cached by their hash.
    built = build(name, path, source, rules, session.cache, upstream=lambda: upstream_code(name, path, source, status))
    code, outcomes, spans = built.code, built.outcomes, built.spans
    if code is None:
        return outcomes
    result = []
    for rule, o in zip(rules, outcomes):
        if o.status != oc.APPLIED:
            result.append(o)
            continue
        holder, function = _function(module, rule.target) if len(rule.changes) == 1 else (None, None)
        new = _patched_code_for(code, function.__code__, spans) if function is not None else None
        if len(rule.changes) != 1:
            reason = (f"{late}, and the rule changes more than one function (its module's top level, a class, "
                      f"several functions or modules), which a live module cannot take whole. {how_to_fix}")
        elif function is None or new is None:
            reason = f"{late}, and its live {rule.target} is not the function in its source. {how_to_fix}"
        elif new.co_freevars != function.__code__.co_freevars:
            reason = f"{late}, and the patched {rule.target} needs other closure variables than the live one. {how_to_fix}"
        else:
            function.__code__ = new
            rule.changes[0].edit.live_applied(holder)
            result.append(oc.Outcome(o.rule_id, name, oc.APPLIED,
                                     f"{o.reason}; applied to the live function because {late}",
                                     o.from_cache, o.version))
            continue
        result.append(oc.Outcome(o.rule_id, name, oc.FAILED, reason, o.from_cache, o.version))
    if any(o.status == oc.APPLIED for o in result):
        st = os.stat(path)
        show_patched_text(path, st.st_size, st.st_mtime, source, spans)
    return result
