"""AddExceptClause and ApplyHunks as before/after pairs, and the rule-author kit that tests them.

Where the expected text can be had independently (a hunk applied by plain string replacement),
it is; where behaviour is the point, the edited module is compiled by the engine and run.
"""

from __future__ import annotations

import pickle
import textwrap

import pytest

import astpatch
from astpatch.testing import assert_already_fixed, assert_edit, assert_no_match, edit_module

# ---------------------------------------------------------------------------------------------
# AddExceptClause

# torch 2.11's RuntimeError clause, declared at a rule file's indentation.
RUNTIME_CLAUSE = '''
            except RuntimeError as e:
                # pybind11 raises RuntimeError with message like:
                # "<pybind11_builtins... object at 0x...> is not pickleable."
                if "pybind11" in str(e) and "is not pickleable" in str(e):
                    log.warning("Failed to pickle cache key", exc_info=True)
                    raise Bypass("Failed to pickle cache key") from e
                raise
'''

CLAUSE = astpatch.AddExceptClause(clause=RUNTIME_CLAUSE, after_clause_raising="Bypass")

# torch 2.10's shape, as a module: the RuntimeError of an unpicklable pybind11 object escapes.
PICKLER = '''
import logging
import pickle

log = logging.getLogger("pickler")


class Bypass(Exception):
    pass


class Pickler:
    def dumps(self, obj):
        """Pickle obj."""
        try:
            return pickle.dumps(obj)
        except (TypeError, AttributeError) as e:
            # Some objects may not pickle.
            raise Bypass("Failed to pickle") from e
        except KeyError:
            return None
        finally:
            pass


def after():
    return "after the edited function"
'''

# PICKLER with the clause added: after the converting clause, before the KeyError one, at the
# try statement's indentation, its body and comments as declared.
PICKLER_FIXED = '''
import logging
import pickle

log = logging.getLogger("pickler")


class Bypass(Exception):
    pass


class Pickler:
    def dumps(self, obj):
        """Pickle obj."""
        try:
            return pickle.dumps(obj)
        except (TypeError, AttributeError) as e:
            # Some objects may not pickle.
            raise Bypass("Failed to pickle") from e
        except RuntimeError as e:
            # pybind11 raises RuntimeError with message like:
            # "<pybind11_builtins... object at 0x...> is not pickleable."
            if "pybind11" in str(e) and "is not pickleable" in str(e):
                log.warning("Failed to pickle cache key", exc_info=True)
                raise Bypass("Failed to pickle cache key") from e
            raise
        except KeyError:
            return None
        finally:
            pass


def after():
    return "after the edited function"
'''


def test_clause_lands_after_the_converting_clause_at_the_try_indentation():
    outcome = assert_edit(PICKLER, PICKLER_FIXED, CLAUSE, target="Pickler.dumps")
    assert outcome.reason == "added `except RuntimeError` after `except (TypeError, AttributeError)`"


def test_the_line_count_grows_and_the_rest_of_the_module_is_kept():
    # The function gains 7 lines: the text is the whole module with the clause in place and the
    # function after it intact (that its line numbers are kept is checked by running the module below).
    outcome, text = edit_module(PICKLER, CLAUSE, target="Pickler.dumps")
    assert outcome.status == "applied"
    assert text == textwrap.dedent(PICKLER_FIXED.lstrip("\n"))
    assert len(text.splitlines()) == len(PICKLER.lstrip("\n").splitlines()) + 7


def test_the_clause_body_keeps_its_relative_indentation_and_trailing_comment():
    # A clause written with two-space indentation keeps it under the four-space try statement.
    edit = astpatch.AddExceptClause(
        clause="except RuntimeError as e:\n  if e:\n      raise Bypass() from e\n  raise\n  # then re-raised\n",
        after_clause_raising="Bypass",
    )
    assert_edit('''
        def f(x):
            try:
                return g(x)
            except TypeError as e:
                raise Bypass() from e
    ''', '''
        def f(x):
            try:
                return g(x)
            except TypeError as e:
                raise Bypass() from e
            except RuntimeError as e:
              if e:
                  raise Bypass() from e
              raise
              # then re-raised
    ''', edit)


class _PybindLike:
    """Pickling it fails the way a pybind11 object without pickle support does."""

    def __init__(self, message: str = "<pybind11_builtins.pybind11_object object> is not pickleable.") -> None:
        self.message = message

    def __reduce__(self):
        raise RuntimeError(self.message)


def _run(source: str, edit: astpatch.Edit | None = None, target: str = "Pickler.dumps") -> dict:
    """The namespace of `source` run as a module: as upstream wrote it, or as the engine compiles it edited."""
    from astpatch._engine.rewrite import rewrite

    text = textwrap.dedent(source.lstrip("\n"))
    if edit is None:
        code = compile(text, "pickler.py", "exec")
    else:
        rule = astpatch.Rule(id="under-test", summary="s", module="pickler", target=target, edit=edit, upstream="u")
        result = rewrite("pickler", "pickler.py", text, [rule], {})
        assert [o.status for o in result.outcomes] == ["applied"], result.outcomes
        code = result.code
    namespace: dict = {"__name__": "pickler"}
    exec(code, namespace)
    return namespace


def test_the_added_clause_converts_the_runtimeerror_when_run():
    upstream = _run(PICKLER)
    with pytest.raises(RuntimeError, match="is not pickleable"):  # the bug, without the edit
        upstream["Pickler"]().dumps(_PybindLike())

    edited = _run(PICKLER, CLAUSE)
    with pytest.raises(edited["Bypass"]) as caught:
        edited["Pickler"]().dumps(_PybindLike())
    assert isinstance(caught.value.__cause__, RuntimeError)
    with pytest.raises(RuntimeError, match="something else"):  # other RuntimeErrors still escape
        edited["Pickler"]().dumps(_PybindLike("something else"))
    assert pickle.loads(edited["Pickler"]().dumps([1, 2])) == [1, 2]
    assert edited["after"]() == "after the edited function"
    assert edited["after"].__code__.co_firstlineno == upstream["after"].__code__.co_firstlineno


TWO_CONVERTING = '''
    def f(x):
        try:
            return g(x)
        except TypeError as e:
            raise Bypass("type") from e
        except KeyError as e:
            raise Bypass("key") from e
        finally:
            done()
'''

SHORT_CLAUSE = "except RuntimeError as e:\n    raise Bypass('runtime') from e\n"


@pytest.mark.parametrize(("catching", "after"), [
    ("TypeError", '''
        def f(x):
            try:
                return g(x)
            except TypeError as e:
                raise Bypass("type") from e
            except RuntimeError as e:
                raise Bypass('runtime') from e
            except KeyError as e:
                raise Bypass("key") from e
            finally:
                done()
    '''),
    ("KeyError", '''
        def f(x):
            try:
                return g(x)
            except TypeError as e:
                raise Bypass("type") from e
            except KeyError as e:
                raise Bypass("key") from e
            except RuntimeError as e:
                raise Bypass('runtime') from e
            finally:
                done()
    '''),
])
def test_catching_picks_among_two_converting_clauses(catching, after):
    edit = astpatch.AddExceptClause(clause=SHORT_CLAUSE, after_clause_raising="Bypass", catching=catching)
    assert_edit(TWO_CONVERTING, after, edit)


def test_two_converting_clauses_without_catching_are_not_guessed():
    edit = astpatch.AddExceptClause(clause=SHORT_CLAUSE, after_clause_raising="Bypass")
    assert_no_match(TWO_CONVERTING, edit,
                    reason="2 except clauses in f raise Bypass; the edit does not guess which one to extend")


def test_catching_a_type_no_converting_clause_catches_is_no_match():
    edit = astpatch.AddExceptClause(clause=SHORT_CLAUSE, after_clause_raising="Bypass", catching="ValueError")
    outcome = assert_no_match(TWO_CONVERTING, edit)
    assert outcome.reason == ("the edit does not apply: no except clause in f raises Bypass and catches ValueError, "
                              "and none catches RuntimeError")


@pytest.mark.parametrize(("source", "target", "reason"), [
    pytest.param(PICKLER_FIXED, "Pickler.dumps",
                 "the try statement whose `except (TypeError, AttributeError)` raises Bypass "
                 "already catches RuntimeError",
                 id="torch-2.11-the-clause-is-there"),
    pytest.param('''
        def f(x):
            try:
                return g(x)
            except (TypeError, RuntimeError) as e:
                raise Bypass() from e
    ''', "f", "the try statement whose `except (TypeError, RuntimeError)` raises Bypass already catches RuntimeError",
        id="caught-by-the-converting-clause"),
    pytest.param('''
        class Pickler:
            def dumps(self, obj):
                try:
                    return pickle.dumps(obj)
                except (TypeError, AttributeError, pickle.PicklingError) as e:
                    CacheabilityValidator.bypass_for_pickle_error(e)
                except RuntimeError as e:
                    CacheabilityValidator.bypass_for_pickle_error(e)
    ''', "Pickler.dumps",
        "no except clause in Pickler.dumps raises Bypass any more, "
        "and `except RuntimeError` already catches RuntimeError",
        id="torch-2.13-a-helper-converts"),
])
def test_already_fixed_when_the_try_catches_the_clause_type(source, target, reason):
    outcome = assert_already_fixed(source, CLAUSE, target=target)
    assert outcome.reason == reason


def test_no_match_when_no_clause_raises_the_type():
    assert_no_match('''
        def f(x):
            try:
                return g(x)
            except (TypeError, AttributeError) as e:
                return None
    ''', CLAUSE, reason="no except clause in f raises Bypass, and none catches RuntimeError")


def test_a_bare_except_clause_is_refused():
    edit = astpatch.AddExceptClause(clause="except:\n    raise Bypass() from None\n", after_clause_raising="Bypass")
    assert_no_match(PICKLER, edit, target="Pickler.dumps",
                    reason="a bare `except:` clause is not added: name the exceptions it catches")


def test_a_clause_that_is_not_an_except_clause_is_refused_at_declaration():
    with pytest.raises(ValueError, match="must be an except clause"):
        astpatch.AddExceptClause(clause="finally:\n    pass\n", after_clause_raising="Bypass")


# ---------------------------------------------------------------------------------------------
# ApplyHunks

# The function a two-hunk upstream diff changes, at the indentation of a method.
DUMPS = '''
import io
import pickle


class Bypass(Exception):
    pass


class Pickler:
    def dumps(self, obj):
        """Pickle obj, or raise Bypass."""
        buffer = io.BytesIO()
        pickler = pickle.Pickler(buffer, protocol=2)
        try:
            pickler.dump(obj)
        except (TypeError, AttributeError) as e:
            raise Bypass("Failed to pickle") from e
        return buffer.getvalue()
'''

HUNK_PROTOCOL = astpatch.Hunk(
    header="@@ -12,6 +12,6 @@ class Pickler:",
    before=[
        '        buffer = io.BytesIO()',
        '        pickler = pickle.Pickler(buffer, protocol=2)',
        '        try:',
    ],
    after=[
        '        buffer = io.BytesIO()',
        '        pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)',
        '        try:',
    ],
)
HUNK_EXCEPT = astpatch.Hunk(
    header="@@ -15,5 +15,5 @@ def dumps(self, obj):",
    before=[
        '            pickler.dump(obj)',
        '        except (TypeError, AttributeError) as e:',
        '            raise Bypass("Failed to pickle") from e',
        '        return buffer.getvalue()',
    ],
    after=[
        '            pickler.dump(obj)',
        '        except (TypeError, AttributeError, ValueError) as e:',
        '            raise Bypass("Failed to pickle") from e',
        '        except RuntimeError as e:',
        '            raise Bypass("Failed to pickle") from e',
        '        return buffer.getvalue()',
    ],
)
HUNKS = astpatch.ApplyHunks(hunks=[HUNK_PROTOCOL, HUNK_EXCEPT])


def _replaced(text: str, *hunks: astpatch.Hunk, occurrence: int | None = None) -> str:
    """The oracle: `text` (dedented) with each hunk applied by plain string replacement, where
    its lines occur exactly once (or at their `occurrence`, counted from 0)."""
    text = textwrap.dedent(text.lstrip("\n"))
    for hunk in hunks:
        old, new = "\n".join(hunk.before) + "\n", "\n".join(hunk.after) + "\n"
        parts = text.split(old)
        if occurrence is None:
            assert len(parts) == 2, "the oracle needs the hunk's lines once in the text"
            text = new.join(parts)
        else:
            assert len(parts) > occurrence + 1, "the oracle needs the hunk's lines in the text"
            text = old.join(parts[: occurrence + 1]) + new + old.join(parts[occurrence + 1:])
    return text


def test_hunks_found_by_content_apply():
    outcome = assert_edit(DUMPS, _replaced(DUMPS, HUNK_PROTOCOL, HUNK_EXCEPT), HUNKS)
    assert outcome.reason == "applied 2 hunks"


def test_the_applied_hunks_change_behaviour_when_run():
    class RefusesValue:
        def __reduce__(self):
            raise ValueError("no")

    upstream = _run(DUMPS)
    with pytest.raises(ValueError):  # upstream lets ValueError escape
        upstream["Pickler"]().dumps(RefusesValue())
    assert upstream["Pickler"]().dumps([1])[1] == 2

    edited = _run(DUMPS, HUNKS)
    with pytest.raises(edited["Bypass"]) as caught:
        edited["Pickler"]().dumps(RefusesValue())
    assert isinstance(caught.value.__cause__, ValueError)
    with pytest.raises(edited["Bypass"]):
        edited["Pickler"]().dumps(_PybindLike())
    data = edited["Pickler"]().dumps([1, 2])
    assert data[1] == pickle.HIGHEST_PROTOCOL  # the protocol byte after PROTO
    assert pickle.loads(data) == [1, 2]


def test_drifted_lines_still_apply():
    # A later release: a function above, a longer docstring and more code before the hunks.
    drifted = DUMPS.replace('class Pickler:\n', 'def helper():\n    return 1\n\n\nclass Pickler:\n').replace(
        '        """Pickle obj, or raise Bypass."""\n',
        '        """Pickle obj, or raise Bypass.\n\n        Objects that do not pickle skip the cache.\n        """\n'
        '        if obj is None:\n            return b""\n',
    )
    assert drifted.count("\n") == DUMPS.count("\n") + 9
    assert_edit(drifted, _replaced(drifted, HUNK_PROTOCOL, HUNK_EXCEPT), HUNKS, target="Pickler.dumps")


# Two functions with the same lines: each rule looks only inside its own target.
TWIN = '''
def first(x):
    y = x + 1
    return y


def second(x):
    y = x + 1
    return y
'''

HUNK_DOUBLE = astpatch.Hunk(before=["    y = x + 1", "    return y"], after=["    y = (x + 1) * 2", "    return y"])


@pytest.mark.parametrize(("target", "occurrence"), [("first", 0), ("second", 1)])
def test_a_hunk_applies_inside_its_target_function_only(target, occurrence):
    assert_edit(TWIN, _replaced(TWIN, HUNK_DOUBLE, occurrence=occurrence),
                astpatch.ApplyHunks(hunks=[HUNK_DOUBLE]), target=target)


def test_lines_only_outside_the_target_are_no_match():
    assert_no_match('''
        def first(x):
            y = x + 1
            return y


        def second(x):
            return x
    ''', astpatch.ApplyHunks(hunks=[HUNK_DOUBLE]), target="second",
        reason="hunk 1: its first line, 'y = x + 1', is not in second")


def test_already_fixed_when_every_hunk_is_there():
    fixed = _replaced(DUMPS, HUNK_PROTOCOL, HUNK_EXCEPT)
    outcome = assert_already_fixed(fixed, HUNKS)
    assert outcome.reason == "all 2 hunks of the diff are already in Pickler.dumps"


@pytest.mark.parametrize("upstream_has", [HUNK_PROTOCOL, HUNK_EXCEPT], ids=["first", "second"])
def test_a_partial_fix_upstream_is_no_match(upstream_has):
    partial = _replaced(DUMPS, upstream_has)
    assert_no_match(partial, HUNKS, reason="1 of the diff's 2 hunks are already in Pickler.dumps and 1 are not: "
                                           "a partial fix upstream")


def test_a_hunk_whose_lines_occur_twice_is_no_match():
    assert_no_match('''
        def f(x):
            if x:
                y = x + 1
                return y
            else:
                y = x + 1
                return y
    ''', astpatch.ApplyHunks(hunks=[astpatch.Hunk(
        header="@@ -3,2 +3,2 @@ def f(x):",
        before=["        y = x + 1", "        return y"],
        after=["        y = x + 2", "        return y"],
    )]), reason="hunk 1 (@@ -3,2 +3,2 @@ def f(x):): its lines occur 2 times in f")


def test_a_hunk_whose_line_moved_is_no_match_naming_the_line():
    moved = DUMPS.replace("            pickler.dump(obj)\n", "            pickler.dump(obj)\n            pass\n")
    assert_no_match(moved, HUNKS, reason="hunk 2 (@@ -15,5 +15,5 @@ def dumps(self, obj):): its line 2, "
                                         "'except (TypeError, AttributeError) as e:', is not where the diff expects it "
                                         "in Pickler.dumps")


def test_trailing_whitespace_of_unchanged_lines_is_kept():
    # Built by concatenation: the trailing spaces are the point, and editors strip them.
    ws = "   "
    before = (
        "def f(x):\n"
        "    y = x + 1" + ws + "\n"
        "    z = y * 2\n"
        "    return z" + ws + "\n"
    )
    after = (
        "def f(x):\n"
        "    y = x + 1" + ws + "\n"
        "    z = y * 3\n"
        "    z += 1\n"
        "    return z" + ws + "\n"
    )
    # The hunk, as a diff tool that strips trailing whitespace gives it.
    hunk = astpatch.Hunk(before=["    y = x + 1", "    z = y * 2", "    return z"],
                         after=["    y = x + 1", "    z = y * 3", "    z += 1", "    return z"])
    assert_edit(before, after, astpatch.ApplyHunks(hunks=[hunk]))


def test_bad_hunks_are_refused_at_declaration():
    with pytest.raises(ValueError, match="changes nothing"):
        astpatch.Hunk(before=["    x = 1"], after=["    x = 1"])
    with pytest.raises(ValueError, match="non-empty list"):
        astpatch.ApplyHunks(hunks=[])


# ---------------------------------------------------------------------------------------------
# The kit itself: it must fail when the edit does not do what the test says.

ADD_VALUE = astpatch.AddExceptTypes(add="ValueError", converts_to="Bypass")

CONVERTING = '''
    def f(x):
        try:
            return g(x)
        except TypeError as e:
            raise Bypass() from e
'''


def test_assert_edit_fails_with_a_diff_when_after_is_wrong():
    wrong = CONVERTING.replace("except TypeError as e:", "except (TypeError, KeyError) as e:")
    with pytest.raises(AssertionError) as failure:
        assert_edit(CONVERTING, wrong, ADD_VALUE)
    message = str(failure.value)
    assert message.startswith("the edited source is not the expected one:\n")
    assert "--- expected\n+++ edited\n" in message
    assert "\n-    except (TypeError, KeyError) as e:\n+    except (TypeError, ValueError) as e:\n" in message


def test_assert_edit_fails_when_the_edit_does_not_apply():
    fixed = CONVERTING.replace("except TypeError as e:", "except (TypeError, ValueError) as e:")
    with pytest.raises(AssertionError, match="the edit did not apply: .*already-fixed"):
        assert_edit(fixed, fixed, ADD_VALUE)


def test_assert_already_fixed_and_assert_no_match_fail_on_a_source_the_edit_changes():
    with pytest.raises(AssertionError, match="did not find the source already fixed: .*applied"):
        assert_already_fixed(CONVERTING, ADD_VALUE)
    with pytest.raises(AssertionError, match="should not match: .*applied"):
        assert_no_match(CONVERTING, ADD_VALUE)


def test_assert_no_match_fails_on_another_reason():
    with pytest.raises(AssertionError, match="expected 'raises KeyError' in the reason"):
        assert_no_match(CONVERTING.replace("raise Bypass() from e", "return None"), ADD_VALUE,
                        reason="raises KeyError")


def test_the_target_must_be_named_when_the_source_defines_several_functions():
    with pytest.raises(AssertionError, match=r"name the target function: the source defines 2 \(f, g\)"):
        assert_edit(CONVERTING + "\n    def g(x):\n        return x\n", CONVERTING, ADD_VALUE)


class RenameCalls(astpatch.Edit):
    """A rule author's own kind: call `new` where the target calls `old` by name."""

    kind = "rename-calls"

    def __init__(self, old: str, new: str) -> None:
        self.old = old
        self.new = new

    def params(self) -> dict:
        return {"old": self.old, "new": self.new}

    def apply(self, target: astpatch.Target) -> astpatch.EditResult:
        import libcst as cst

        old, new, called = self.old, self.new, set()

        class Rename(cst.CSTTransformer):
            def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.Call:
                if isinstance(updated.func, cst.Name):
                    called.add(updated.func.value)
                    if updated.func.value == old:
                        return updated.with_changes(func=cst.Name(new))
                return updated

        node = target.node.visit(Rename())
        if old in called:
            return astpatch.EditResult.applied(node, f"{old} -> {new}")
        if new in called:
            return astpatch.EditResult.already_fixed(f"{target.qualname} calls {new}")
        return astpatch.EditResult.no_match(f"{target.qualname} calls neither {old} nor {new}")


def test_a_custom_edit_kind_is_tested_with_the_kit():
    edit = RenameCalls("dumps", "safe_dumps")
    before = '''
        from pickle import dumps, dumps as safe_dumps


        def save(obj, path):
            data = dumps(obj)  # the call to replace
            write(path, data)
            return len(dumps(data))
    '''
    after = before.replace("= dumps(obj)", "= safe_dumps(obj)").replace("len(dumps(", "len(safe_dumps(")
    assert assert_edit(before, after, edit, target="save").reason == "dumps -> safe_dumps"
    assert assert_already_fixed(after, edit, target="save").reason == "save calls safe_dumps"
    assert_no_match("def save(obj):\n    return obj\n", edit, reason="save calls neither dumps nor safe_dumps")
    with pytest.raises(AssertionError, match="the edited source is not the expected one"):
        assert_edit(before, after.replace("len(safe_dumps(data))", "len(dumps(data))"), edit, target="save")


def test_a_hunk_that_only_adds_lines_is_already_fixed_on_its_own_result():
    """A pure insertion's `before` lines stay inside its `after`: once applied, it must not apply again."""
    grow = astpatch.ApplyHunks(hunks=[astpatch.Hunk(before=["    y = x + 1"], after=["    y = x + 1", "    y *= 2"])])
    before = "def f(x):\n    y = x + 1\n    return y\n"
    after = "def f(x):\n    y = x + 1\n    y *= 2\n    return y\n"
    assert_edit(before, after, grow)
    assert_already_fixed(after, grow)


def test_a_hunk_whose_context_changed_upstream_is_already_fixed_when_its_change_is_there():
    """A later release has the fix but rewrote the lines around it: the added lines are there and
    the removed ones are not, so the fix is in; where the added lines are missing, it is not."""
    fix = astpatch.ApplyHunks(hunks=[astpatch.Hunk(
        before=["    # step one", "    value = int(text)", "    return value"],
        after=["    # step one", "    value = int(text, 0)", "    return value"])])
    later = "def parse(text):\n    # step 1, rewritten\n    value = int(text, 0)\n    return value\n"
    assert_already_fixed(later, fix)
    rewritten = later.replace("int(text, 0)", "int(text, base=0)")
    assert_no_match(rewritten, fix, reason="hunk 1")
    removal = astpatch.ApplyHunks(hunks=[astpatch.Hunk(before=["import os", "import weakref", "import re"],
                                                       after=["import os", "import re"])])
    assert_already_fixed("import os\nimport typing\nimport re\n", removal, target="")
    assert_no_match("import weakref\nimport os\n", removal, target="", reason="hunk 1")
