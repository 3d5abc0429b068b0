"""AddExceptTypes as before/after pairs: what it changes, and what it refuses to change."""

from __future__ import annotations

import textwrap

import pytest

import astpatch
from astpatch._base import outcomes as oc
from astpatch._engine.rewrite import rewrite
from astpatch._base.lines import patched_lines, split_lines

EDIT = astpatch.AddExceptTypes(add=("ValueError",), converts_to="Bypass")


def apply(before: str, edit=EDIT, target: str = "f"):
    """Run one rule with `edit` on module text `before`; return (outcome, text after)."""
    before = textwrap.dedent(before)
    rule = astpatch.Rule(id="r", summary="s", module="m", target=target, edit=edit, upstream="u")
    result = rewrite("m", "m.py", before, [rule], {})
    (outcome,) = result.outcomes
    return outcome, "".join(patched_lines(split_lines(before), result.spans))


def test_adds_to_a_tuple_keeping_comments_and_layout():
    outcome, after = apply('''
        def f(x):
            try:
                return g(x)  # call it
            except (TypeError, AttributeError) as e:   # odd spacing kept
                # Some objects may not pickle.
                raise Bypass("no") from e
    ''')
    assert outcome.status == oc.APPLIED
    assert after == textwrap.dedent('''
        def f(x):
            try:
                return g(x)  # call it
            except (TypeError, AttributeError, ValueError) as e:   # odd spacing kept
                # Some objects may not pickle.
                raise Bypass("no") from e
    ''')


def test_a_single_type_becomes_a_tuple():
    _, after = apply('''
        def f(x):
            try:
                return g(x)
            except TypeError:
                raise Bypass
    ''')
    assert "except (TypeError, ValueError):" in after


def test_a_parenthesised_single_type_keeps_its_parentheses():
    _, after = apply('''
        def f(x):
            try:
                return g(x)
            except(TypeError) as e:
                raise Bypass() from e
    ''')
    assert "except(TypeError, ValueError) as e:" in after


def test_a_vertical_tuple_gets_a_new_line_in_its_style():
    _, after = apply('''
        def f(x):
            try:
                return g(x)
            except (
                TypeError,
                AttributeError,
            ) as e:
                raise Bypass() from e
    ''')
    assert after == textwrap.dedent('''
        def f(x):
            try:
                return g(x)
            except (
                TypeError,
                AttributeError,
                ValueError,
            ) as e:
                raise Bypass() from e
    ''')


def test_dotted_converts_to_and_dotted_added_types():
    edit = astpatch.AddExceptTypes(add=("ValueError", "pickle.PickleError"), converts_to="Bypass")
    outcome, after = apply('''
        def f(x):
            try:
                return g(x)
            except TypeError as e:
                raise errors.Bypass("x") from e
    ''', edit)
    assert outcome.status == oc.APPLIED
    assert "except (TypeError, ValueError, pickle.PickleError) as e:" in after


def test_already_fixed_when_the_clause_catches_the_type():
    before = '''
        def f(x):
            try:
                return g(x)
            except (TypeError, ValueError) as e:
                raise Bypass() from e
    '''
    outcome, after = apply(before)
    assert outcome.status == oc.ALREADY_FIXED
    assert after == textwrap.dedent(before)


def test_already_fixed_when_a_sibling_clause_catches_the_type():
    outcome, _ = apply('''
        def f(x):
            try:
                return g(x)
            except TypeError as e:
                raise Bypass() from e
            except ValueError:
                return None
    ''')
    assert outcome.status == oc.ALREADY_FIXED


def test_already_fixed_recognised_by_types_when_the_body_changed():
    # torch 2.13's shape: the clause calls a helper instead of raising Bypass itself.
    outcome, _ = apply('''
        def f(x):
            try:
                return g(x)
            except (TypeError, AttributeError, ValueError) as e:
                Validator.bypass(e)
    ''')
    assert outcome.status == oc.ALREADY_FIXED
    assert "no except clause in f raises Bypass any more" in outcome.reason


def test_already_fixed_with_a_second_converting_clause():
    # torch 2.11's shape: the fix added ValueError and a RuntimeError clause that also converts.
    outcome, _ = apply('''
        def f(x):
            try:
                return g(x)
            except (TypeError, AttributeError, ValueError) as e:
                raise Bypass("no") from e
            except RuntimeError as e:
                if "is not pickleable" in str(e):
                    raise Bypass("no") from e
                raise
    ''')
    assert outcome.status == oc.ALREADY_FIXED
    assert outcome.reason == "the try statement whose `except (TypeError, AttributeError, ValueError)` raises " \
                             "Bypass already catches ValueError"


def test_no_match_is_a_failure_with_the_reason():
    outcome, after = apply('''
        def f(x):
            try:
                return g(x)
            except TypeError:
                return None
    ''')
    assert outcome.status == oc.FAILED
    assert outcome.reason == "the edit does not apply: no except clause in f raises Bypass, and none catches ValueError"


def test_two_converting_clauses_are_not_guessed():
    outcome, _ = apply('''
        def f(x):
            try:
                return g(x)
            except TypeError as e:
                raise Bypass() from e
            except KeyError as e:
                raise Bypass() from e
    ''')
    assert outcome.status == oc.FAILED
    assert "2 except clauses in f raise Bypass" in outcome.reason


def test_nested_functions_are_not_searched():
    outcome, _ = apply('''
        def f(x):
            def inner():
                try:
                    return g(x)
                except TypeError as e:
                    raise Bypass() from e
            return inner
    ''')
    assert outcome.status == oc.FAILED


def test_bad_declarations_are_refused_at_declaration():
    with pytest.raises(ValueError, match="dotted name"):
        astpatch.AddExceptTypes(add=("Value Error",), converts_to="Bypass")
    with pytest.raises(ValueError, match="at least one"):
        astpatch.AddExceptTypes(add=(), converts_to="Bypass")


def test_fingerprint_changes_with_the_parameters():
    a = astpatch.AddExceptTypes(add=("ValueError",), converts_to="Bypass")
    b = astpatch.AddExceptTypes(add=("ValueError", "KeyError"), converts_to="Bypass")
    assert a.fingerprint() != b.fingerprint()
    assert a == astpatch.AddExceptTypes(add="ValueError", converts_to="Bypass")


def test_clauses_inside_nested_blocks_are_found():
    outcome, after = apply('''
        def f(x):
            if x:
                pass
            elif x > 1:
                pass
            else:
                with open(x) as handle:
                    for line in handle:
                        try:
                            g(line)
                        except TypeError as e:
                            if e:
                                raise Bypass() from e
    ''')
    assert outcome.status == oc.APPLIED
    assert "except (TypeError, ValueError) as e:" in after
