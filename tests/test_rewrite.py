"""The engine on modules the tests write: outcomes, line numbers and compiled code."""

from __future__ import annotations

import textwrap
import types
from importlib.util import decode_source

import pytest

import astpatch
from astpatch._base import outcomes as oc
from astpatch._base.lines import linecache_lines, patched_lines, split_lines
from astpatch._engine.rewrite import rewrite

from conftest import PICKLER_SOURCE, code_fields, rule


def codes(code: types.CodeType):
    """Every code object in a module's code, depth first."""
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from codes(const)


def by_name(code: types.CodeType) -> dict[str, types.CodeType]:
    return {getattr(c, "co_qualname", c.co_name) + f"@{c.co_firstlineno}": c for c in codes(code)}


def test_applied_changes_only_the_clause():
    result = rewrite("pickler", "pickler.py", PICKLER_SOURCE, [rule()], {})
    assert [o.status for o in result.outcomes] == [oc.APPLIED]
    before = split_lines(PICKLER_SOURCE)
    after = patched_lines(before, result.spans)
    changed = [(i + 1, a, b) for i, (a, b) in enumerate(zip(before, after)) if a != b]
    assert changed == [(17, "        except (TypeError, AttributeError) as e:\n",
                        "        except (TypeError, AttributeError, ValueError) as e:\n")]
    assert len(after) == len(before)


def test_compiled_code_equals_a_full_compile_of_the_patched_text():
    result = rewrite("pickler", "pickler.py", PICKLER_SOURCE, [rule()], {})
    text = "".join(patched_lines(split_lines(PICKLER_SOURCE), result.spans))
    assert code_fields(result.code) == code_fields(compile(text, "pickler.py", "exec", dont_inherit=True))


def test_lines_outside_the_function_keep_their_numbers_when_an_edit_adds_lines():
    source = textwrap.dedent('''\
        class Bypass(Exception):
            pass


        class Pickler:
            def dumps(self, obj):
                try:
                    return repr(obj)
                except (
                    TypeError,
                    AttributeError,
                ) as e:
                    raise Bypass() from e

            def after(self):
                return 16

            @staticmethod
            def decorated():
                return 20


        def module_level():
            return 24
    ''')
    result = rewrite("pickler", "pickler.py", source, [rule()], {})
    assert result.outcomes[0].status == oc.APPLIED
    # The edit inserts one line after line 11: only that line is new.
    (span,) = result.spans
    assert (span.start, span.end, span.lines) == (12, 11, ["            ValueError,\n"])
    # It cannot stay in place without shifting what follows, so it is compiled past the end of
    # the file (24 lines, then a blank line and a note), and every other line of the file, the
    # function's own included, keeps its number.
    assert span.moved_to == 27
    original = compile(source, "pickler.py", "exec", dont_inherit=True)
    patched, plain = by_name(result.code), by_name(original)
    assert set(patched) == set(plain)  # dumps still starts at line 6
    for name, code in plain.items():
        if "dumps" not in name:
            assert list(patched[name].co_lines()) == list(code.co_lines()), name  # upstream's, line for line
    shown = linecache_lines(split_lines(source), result.spans)
    assert shown[:24] == split_lines(source)
    assert shown[25] == "# astpatch: inserted after line 11 of this file\n"
    assert shown[26:] == span.lines
    namespace: dict = {}
    exec(result.code, namespace)
    dumps = namespace["Pickler"].dumps
    assert dumps.__code__.co_firstlineno == 6
    # Its lines: its own in the file (the prologue at 6 from Python 3.11 on), and the new one.
    assert {line for _, _, line in dumps.__code__.co_lines() if line} - {6} == {7, 8, 9, 10, 11, 13, 27}
    assert namespace["Pickler"].after.__code__.co_firstlineno == 15
    assert namespace["module_level"]() == 24


def test_the_patched_function_behaves_as_fixed():
    result = rewrite("pickler", "pickler.py", PICKLER_SOURCE, [rule()], {})
    namespace: dict = {}
    exec(result.code, namespace)

    class Bad:
        def __reduce__(self):
            raise ValueError("fast mode: can't pickle cyclic objects")

    try:
        namespace["Pickler"]().dumps(Bad())
    except namespace["Bypass"] as error:
        assert isinstance(error.__cause__, ValueError)
    else:
        raise AssertionError("Bypass was not raised")


def test_target_missing():
    result = rewrite("pickler", "pickler.py", PICKLER_SOURCE, [rule(target="Pickler.loads")], {})
    (o,) = result.outcomes
    assert (o.status, o.reason) == (oc.TARGET_MISSING, "Pickler.loads is not defined in Pickler")
    assert result.code is None and result.spans == []


def test_target_that_is_a_class():
    (o,) = rewrite("pickler", "pickler.py", PICKLER_SOURCE, [rule(target="Pickler")], {}).outcomes
    assert (o.status, o.reason) == (oc.TARGET_MISSING, "Pickler is a class, not a function")


def test_outside_the_gate_is_not_applicable_and_changes_nothing():
    result = rewrite("pickler", "pickler.py", PICKLER_SOURCE, [rule(gate="pickledist>=2.10")], {"pickledist": "2.9.1"})
    (o,) = result.outcomes
    assert o.status == oc.NOT_APPLICABLE
    assert o.reason == "pickledist 2.9.1 is outside the gate pickledist>=2.10"
    assert o.version == "2.9.1"
    assert result.code is None


def test_gate_on_a_distribution_that_is_not_installed():
    (o,) = rewrite("pickler", "pickler.py", PICKLER_SOURCE, [rule(gate="pickledist>=2.10")], {"pickledist": None}).outcomes
    assert (o.status, o.reason) == (oc.NOT_APPLICABLE, "pickledist is not installed (gate pickledist>=2.10)")


def test_already_fixed_wins_over_the_gate():
    fixed = PICKLER_SOURCE.replace("(TypeError, AttributeError)", "(TypeError, AttributeError, ValueError)")
    result = rewrite("pickler", "pickler.py", fixed, [rule(gate="pickledist>=2.10,<2.11")], {"pickledist": "2.13.0"})
    assert result.outcomes[0].status == oc.ALREADY_FIXED
    assert result.code is None


def test_an_edit_that_raises_is_a_failure_not_an_exception():
    class Broken(astpatch.Edit):
        kind = "broken"

        def params(self):
            return {}

        def apply(self, target):
            raise RuntimeError("boom")

    (o,) = rewrite("pickler", "pickler.py", PICKLER_SOURCE, [rule(edit=Broken())], {}).outcomes
    assert (o.status, o.reason) == (oc.FAILED, "the edit broken raised RuntimeError: boom")


def test_an_edit_that_produces_invalid_code_fails_to_compile_cleanly():
    import libcst as cst

    class Invalid(astpatch.Edit):
        kind = "invalid"

        def params(self):
            return {}

        def apply(self, target):
            # `nonlocal` with no enclosing binding parses but does not compile.
            body = target.node.body.with_changes(body=[cst.parse_statement("nonlocal y\n")])
            return astpatch.EditResult.applied(target.node.with_changes(body=body))

    result = rewrite("pickler", "pickler.py", PICKLER_SOURCE, [rule(edit=Invalid())], {})
    (o,) = result.outcomes
    assert o.status == oc.FAILED and o.reason.startswith("the patched module does not compile:")
    assert result.code is None


def test_two_rules_on_one_function_apply_in_order():
    first = rule(id="first")
    second = rule(id="second", edit=astpatch.AddExceptTypes(add=("KeyError",), converts_to="Bypass"))
    result = rewrite("pickler", "pickler.py", PICKLER_SOURCE, [first, second], {})
    assert [o.status for o in result.outcomes] == [oc.APPLIED, oc.APPLIED]
    text = "".join(patched_lines(split_lines(PICKLER_SOURCE), result.spans))
    assert "except (TypeError, AttributeError, ValueError, KeyError) as e:" in text


def test_idempotent_on_its_own_output():
    once = rewrite("pickler", "pickler.py", PICKLER_SOURCE, [rule()], {})
    text = "".join(patched_lines(split_lines(PICKLER_SOURCE), once.spans))
    twice = rewrite("pickler", "pickler.py", text, [rule()], {})
    assert twice.outcomes[0].status == oc.ALREADY_FIXED and twice.code is None


def test_conditional_definitions_are_ambiguous():
    source = textwrap.dedent('''\
        import sys
        if sys.version_info >= (3, 12):
            def f():
                pass
        else:
            def f():
                pass
    ''')
    (o,) = rewrite("m", "m.py", source, [rule(module="m", target="f")], {}).outcomes
    assert o.status == oc.FAILED and "defined 2 times (lines 3, 6)" in o.reason


def test_a_source_that_does_not_parse():
    (o,) = rewrite("m", "m.py", "def f(:\n", [rule(module="m", target="f")], {}).outcomes
    assert o.status == oc.FAILED and o.reason.startswith("m.py does not parse")


# A file as some editors write it: CRLF line endings, tab indents, and the target last, without a final newline.
CRLF_FILE = (b"class Bypass(Exception):\r\n\tpass\r\n\r\n\r\nclass Pickler:\r\n\tdef dumps(self, obj):\r\n"
             b"\t\ttry:\r\n\t\t\treturn int(obj)\r\n\t\texcept TypeError as e:\r\n\t\t\traise Bypass() from e")


def test_tabs_crlf_and_no_final_newline(modules, hook):
    """The bytes on disk are decoded as the import system does; the result is what a plain import
    of the patched file (CRLF, tabs, no final newline kept) would run."""
    path = modules("crlf_module", "")
    path.write_bytes(CRLF_FILE)
    patched_file = CRLF_FILE.replace(b"except TypeError as e", b"except (TypeError, ValueError) as e")
    # compile() of the bytes is what SourceFileLoader runs for a plain import of the patched file.
    plain = compile(patched_file, str(path), "exec", dont_inherit=True)

    text = decode_source(CRLF_FILE)
    result = rewrite("crlf_module", str(path), text, [rule(module="crlf_module")], {})
    assert [o.status for o in result.outcomes] == [oc.APPLIED]
    assert "".join(patched_lines(split_lines(text), result.spans)) == decode_source(patched_file)
    assert code_fields(result.code) == code_fields(plain)

    hook(rules=[rule(module="crlf_module")])
    import crlf_module

    assert [(o.module, o.status) for o in astpatch.applied()] == [("crlf_module", oc.APPLIED)]
    (dumps,) = [c for c in codes(plain) if c.co_name == "dumps"]
    assert code_fields(crlf_module.Pickler.dumps.__code__) == code_fields(dumps)
    with pytest.raises(crlf_module.Bypass):
        crlf_module.Pickler().dumps("not a number")  # ValueError, converted by the patched clause


def test_a_missing_target_outside_the_gate_is_not_applicable():
    # An old release that never had the function is outside the gate, not a stale rule.
    (o,) = rewrite("pickler", "pickler.py", PICKLER_SOURCE, [rule(target="Pickler.gone", gate="pickledist>=3")],
                   {"pickledist": "1.0"}).outcomes
    assert (o.status, o.reason) == (oc.NOT_APPLICABLE, "pickledist 1.0 is outside the gate pickledist>=3")


def test_a_text_edit_result_is_spliced_like_a_node_result():
    class Text(astpatch.Edit):
        kind = "text"

        def params(self):
            return {}

        def apply(self, target):
            assert target.code.startswith("    def dumps(self, obj):\n")
            return astpatch.EditResult.applied_code(target.code.replace("Failed to pickle", "Cannot pickle"))

    result = rewrite("pickler", "pickler.py", PICKLER_SOURCE, [rule(edit=Text()), rule(id="second")], {})
    assert [o.status for o in result.outcomes] == [oc.APPLIED, oc.APPLIED]
    text = "".join(patched_lines(split_lines(PICKLER_SOURCE), result.spans))
    assert text == PICKLER_SOURCE.replace("Failed to pickle", "Cannot pickle").replace(
        "(TypeError, AttributeError)", "(TypeError, AttributeError, ValueError)")


FAST_PATH_SOURCE = '''\
from __future__ import annotations

import pickle
import os.path as osp
from json import dumps as json_dumps, loads
try:
    import zlib
except ImportError:
    zlib = None


class Bypass(Exception):
    pass


class Outer:
    class Pickler(dict):
        """A nested class, with decorators, super(), private names and annotations."""

        __secret = 1

        @staticmethod
        def helper(x: int) -> int:
            return x

        @property
        def dumps(self, obj: Pickler | None = None) -> bytes:
            try:
                super().__init__()
                osp.join(json_dumps(loads("1")), zlib.compress(b"").hex())
                return pickle.dumps((obj, self.__secret))
            except (
                TypeError,
                AttributeError,
            ) as e:
                raise Bypass(
                    "Failed to pickle"
                ) from e
            # a trailing comment inside the function

        def after(self):
            return [x for x in range(3)]


def module_level():
    return 44
'''


@pytest.mark.python311  # 3.10 has no end positions in code objects: it always parses (the other tests cover it)
def test_the_code_object_path_gives_the_same_code_as_parsing_the_module():
    """Locating from the upstream code objects and compiling only the function: as a full rewrite."""
    r = rule(target="Outer.Pickler.dumps")
    upstream = compile(FAST_PATH_SOURCE, "m.py", "exec", dont_inherit=True)
    fast = rewrite("pickler", "m.py", FAST_PATH_SOURCE, [r], {}, upstream=upstream)
    slow = rewrite("pickler", "m.py", FAST_PATH_SOURCE, [r], {})
    assert [o.status for o in fast.outcomes] == [oc.APPLIED]
    # The code-object span of the function also takes the indented comment after its last
    # statement; the line the edit inserts, the text and the code are the same either way.
    assert [(s.start, s.end) for s in fast.spans] == [(s.start, s.end) for s in slow.spans] == [(35, 34)]
    lines = split_lines(FAST_PATH_SOURCE)
    assert patched_lines(lines, fast.spans) == patched_lines(lines, slow.spans)
    assert code_fields(fast.code) == code_fields(slow.code)


def test_an_edit_that_needs_a_new_closure_cell_compiles_the_whole_module():
    """An edit that makes the method use super() needs the class body to create __class__."""
    class UsesSuper(astpatch.Edit):
        kind = "uses-super"

        def params(self):
            return {}

        def apply(self, target):
            return astpatch.EditResult.applied_code(
                target.code.replace("return pickle.dumps(obj)", "return super().__init__() or pickle.dumps(obj)"))

    upstream = compile(PICKLER_SOURCE, "pickler.py", "exec", dont_inherit=True)
    for given in (None, upstream):
        result = rewrite("pickler", "pickler.py", PICKLER_SOURCE, [rule(edit=UsesSuper())], {}, upstream=given)
        text = "".join(patched_lines(split_lines(PICKLER_SOURCE), result.spans))
        assert code_fields(result.code) == code_fields(compile(text, "pickler.py", "exec", dont_inherit=True))
        namespace: dict = {}
        exec(result.code, namespace)
        assert namespace["Pickler"]().dumps(1) == __import__("pickle").dumps(1)  # runs, with its __class__ cell


def test_imported_names_are_read_from_bytecode_as_dis_reads_them():
    """Module-level import bindings, past 256 names (EXTENDED_ARG), conditional ones included."""
    import dis

    from astpatch._engine.compile import _imported_names

    source = "".join(f"name{i} = {i}\n" for i in range(300)) + (
        "import os\nimport os.path as osp\nfrom json import dumps, loads as l\n"
        "try:\n    import zlib\nexcept ImportError:\n    zlib = None\nx = os\n")
    code = compile(source, "m.py", "exec")
    expected: list[str] = []
    importing = False
    for ins in dis.get_instructions(code):
        if ins.opname == "IMPORT_NAME":
            importing = True
        elif importing and ins.opname in ("STORE_NAME", "STORE_GLOBAL"):
            expected.append(ins.argval)
        elif ins.opname not in ("IMPORT_NAME", "IMPORT_FROM", "STORE_NAME", "STORE_GLOBAL", "POP_TOP", "SWAP", "COPY",
                                "EXTENDED_ARG"):
            importing = False
    assert _imported_names(code) == expected == ["os", "osp", "dumps", "l", "zlib"]
