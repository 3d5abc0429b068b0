"""Testing helpers for rule authors: an edit's tests as before/after pairs.

    from astpatch import AddExceptTypes
    from astpatch.testing import assert_edit

    def test_adds_valueerror():
        assert_edit(
            '''
            def dumps(obj):
                try:
                    return pickle.dumps(obj)
                except TypeError as e:
                    raise Bypass() from e
            ''',
            '''
            def dumps(obj):
                try:
                    return pickle.dumps(obj)
                except (TypeError, ValueError) as e:
                    raise Bypass() from e
            ''',
            AddExceptTypes(add="ValueError", converts_to="Bypass"),
        )

Each helper runs the edit through astpatch's own engine (the one imports use), on a module whose
source is the dedented `before`, and fails with the whole outcome when it is not the one
expected. `target` names the function or class (its qualified name), or is "" for the module's
top level; it may be left out when the source defines one function only.
"""

from __future__ import annotations

import ast
import textwrap

from ._base import outcomes as oc
from ._base.lines import patched_lines, split_lines
from ._engine.locate import all_functions
from ._engine.rewrite import rewrite
from ._model.edit import Edit
from ._model.rule import Change, Rule

__all__ = ["assert_already_fixed", "assert_edit", "assert_no_match", "clear_outcomes", "edit_module"]

MODULE = "edited"


def _source(text: str) -> str:
    return textwrap.dedent(text.lstrip("\n")) if text.startswith("\n") else textwrap.dedent(text)


def _target(source: str, target: str | None) -> str:
    if target is not None:
        return target
    functions = [name for name, _, _ in all_functions(ast.parse(source))]
    if len(functions) != 1:
        raise AssertionError(f"name the target function: the source defines {len(functions)} ({', '.join(functions)})")
    return functions[0]


def edit_module(before: str, edit: Edit, *, target: str | None = None,
                gate: str | None = None, versions: dict[str, str | None] | None = None) -> tuple[oc.Outcome, str]:
    """The outcome of `edit` on the dedented source `before`, and the module's text afterwards."""
    source = _source(before)
    rule = Rule(id="edit-under-test", summary="the edit under test", upstream="a test", gate=gate,
                changes=[Change(module=MODULE, scope=_target(source, target), edit=edit)])
    result = rewrite(MODULE, f"{MODULE}.py", source, [rule], versions or {})
    (outcome,) = result.outcomes
    if outcome.status == oc.APPLIED:
        assert result.code is not None, "an applied edit must give code"
    return outcome, "".join(patched_lines(split_lines(source), result.spans))


def assert_edit(before: str, after: str, edit: Edit, *, target: str | None = None) -> oc.Outcome:
    """`edit` applies to `before` and gives exactly `after` (both dedented), which compiles."""
    outcome, text = edit_module(before, edit, target=target)
    expected = _source(after)
    assert outcome.status == oc.APPLIED, f"the edit did not apply: {outcome!r}"
    if text != expected:
        import difflib

        diff = "".join(difflib.unified_diff(split_lines(expected), split_lines(text), "expected", "edited"))
        raise AssertionError(f"the edited source is not the expected one:\n{diff}")
    compile(text, f"{MODULE}.py", "exec", dont_inherit=True)
    return outcome


def assert_already_fixed(source: str, edit: Edit, *, target: str | None = None) -> oc.Outcome:
    """`edit` recognises the fixed shape in `source` and leaves it as it is."""
    outcome, text = edit_module(source, edit, target=target)
    assert outcome.status == oc.ALREADY_FIXED, f"the edit did not find the source already fixed: {outcome!r}"
    assert text == _source(source), "an already-fixed source must be left as it is"
    return outcome


def assert_no_match(source: str, edit: Edit, *, reason: str = "", target: str | None = None) -> oc.Outcome:
    """`edit` neither applies to `source` nor finds it fixed (the outcome is `failed`), and says `reason`."""
    outcome, text = edit_module(source, edit, target=target)
    assert outcome.status == oc.FAILED, f"the edit should not match: {outcome!r}"
    assert reason in outcome.reason, f"expected {reason!r} in the reason: {outcome.reason!r}"
    assert text == _source(source), "a source the edit does not match must be left as it is"
    return outcome


def clear_outcomes() -> None:
    """Forget the outcomes `astpatch.applied()` has recorded in this process (between tests)."""
    oc.clear_recorded()
