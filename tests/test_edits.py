"""AddExceptTypes as before/after pairs: what it changes, and what it refuses to change.

Written with `astpatch.testing`, the kit rule authors use, so the kit is what the shipped kinds
are tested with.
"""

from __future__ import annotations

import pytest

import astpatch
from astpatch.testing import assert_already_fixed, assert_edit, assert_no_match

EDIT = astpatch.AddExceptTypes(add=("ValueError",), converts_to="Bypass")


def test_adds_to_a_tuple_keeping_comments_and_layout():
    assert_edit('''
        def f(x):
            try:
                return g(x)  # call it
            except (TypeError, AttributeError) as e:   # odd spacing kept
                # Some objects may not pickle.
                raise Bypass("no") from e
    ''', '''
        def f(x):
            try:
                return g(x)  # call it
            except (TypeError, AttributeError, ValueError) as e:   # odd spacing kept
                # Some objects may not pickle.
                raise Bypass("no") from e
    ''', EDIT)


def test_a_single_type_becomes_a_tuple():
    assert_edit('''
        def f(x):
            try:
                return g(x)
            except TypeError:
                raise Bypass
    ''', '''
        def f(x):
            try:
                return g(x)
            except (TypeError, ValueError):
                raise Bypass
    ''', EDIT)


def test_a_parenthesised_single_type_keeps_its_parentheses():
    assert_edit('''
        def f(x):
            try:
                return g(x)
            except(TypeError) as e:
                raise Bypass() from e
    ''', '''
        def f(x):
            try:
                return g(x)
            except(TypeError, ValueError) as e:
                raise Bypass() from e
    ''', EDIT)


def test_a_vertical_tuple_gets_a_new_line_in_its_style():
    assert_edit('''
        def f(x):
            try:
                return g(x)
            except (
                TypeError,
                AttributeError,
            ) as e:
                raise Bypass() from e
    ''', '''
        def f(x):
            try:
                return g(x)
            except (
                TypeError,
                AttributeError,
                ValueError,
            ) as e:
                raise Bypass() from e
    ''', EDIT)


def test_dotted_converts_to_and_dotted_added_types():
    edit = astpatch.AddExceptTypes(add=("ValueError", "pickle.PickleError"), converts_to="Bypass")
    assert_edit('''
        import pickle


        def f(x):
            try:
                return g(x)
            except TypeError as e:
                raise errors.Bypass("x") from e
    ''', '''
        import pickle


        def f(x):
            try:
                return g(x)
            except (TypeError, ValueError, pickle.PickleError) as e:
                raise errors.Bypass("x") from e
    ''', edit)


def test_already_fixed_when_the_clause_catches_the_type():
    assert_already_fixed('''
        def f(x):
            try:
                return g(x)
            except (TypeError, ValueError) as e:
                raise Bypass() from e
    ''', EDIT)


def test_already_fixed_when_a_sibling_clause_catches_the_type():
    assert_already_fixed('''
        def f(x):
            try:
                return g(x)
            except TypeError as e:
                raise Bypass() from e
            except ValueError:
                return None
    ''', EDIT)


def test_already_fixed_recognised_by_types_when_the_body_changed():
    # torch 2.13's shape: the clause calls a helper instead of raising Bypass itself.
    outcome = assert_already_fixed('''
        def f(x):
            try:
                return g(x)
            except (TypeError, AttributeError, ValueError) as e:
                Validator.bypass(e)
    ''', EDIT)
    assert "no except clause in f raises Bypass any more" in outcome.reason


def test_already_fixed_with_a_second_converting_clause():
    # torch 2.11's shape: the fix added ValueError and a RuntimeError clause that also converts.
    outcome = assert_already_fixed('''
        def f(x):
            try:
                return g(x)
            except (TypeError, AttributeError, ValueError) as e:
                raise Bypass("no") from e
            except RuntimeError as e:
                if "is not pickleable" in str(e):
                    raise Bypass("no") from e
                raise
    ''', EDIT)
    assert outcome.reason == "the try statement whose `except (TypeError, AttributeError, ValueError)` raises " \
                             "Bypass already catches ValueError"


def test_no_match_is_a_failure_with_the_reason():
    reason = "the edit does not apply: no except clause in f raises Bypass, and none catches ValueError"
    outcome = assert_no_match('''
        def f(x):
            try:
                return g(x)
            except TypeError:
                return None
    ''', EDIT, reason=reason)
    assert outcome.reason == reason


def test_two_converting_clauses_are_not_guessed():
    assert_no_match('''
        def f(x):
            try:
                return g(x)
            except TypeError as e:
                raise Bypass() from e
            except KeyError as e:
                raise Bypass() from e
    ''', EDIT, reason="2 except clauses in f raise Bypass")


def test_nested_functions_are_not_searched():
    # The source defines f and f.inner: the target is named.
    assert_no_match('''
        def f(x):
            def inner():
                try:
                    return g(x)
                except TypeError as e:
                    raise Bypass() from e
            return inner
    ''', EDIT, target="f", reason="no except clause in f raises Bypass")


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
    assert_edit('''
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
    ''', '''
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
                        except (TypeError, ValueError) as e:
                            if e:
                                raise Bypass() from e
    ''', EDIT)
