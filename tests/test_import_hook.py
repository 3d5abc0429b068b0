"""install(), the finder and the loader, in this process, on modules the tests write."""

from __future__ import annotations

import importlib
import importlib.resources
import inspect
import marshal
import os
import pkgutil
import sys
import traceback
import warnings
import zipfile

import pytest

import astpatch
from astpatch._base import outcomes as oc
from astpatch._hook.finder import PatchingFinder, PatchingLoader

from conftest import PICKLER_SOURCE, install_dist, rule


class Unpicklable:
    def __init__(self, error):
        self.error = error

    def __reduce__(self):
        raise self.error


def test_install_puts_one_finder_first_and_twice_installs_nothing_more(hook):
    first = hook(rules=[rule()])
    assert sys.meta_path[0] is first.finder
    count = len(sys.meta_path)
    assert hook(rules=[rule()]) is first
    assert len(sys.meta_path) == count
    astpatch.uninstall()
    assert not any(isinstance(f, PatchingFinder) for f in sys.meta_path)
    assert not first.active


def test_context_manager_uninstalls(hook):
    with hook(rules=[rule()]) as installation:
        assert installation.finder in sys.meta_path
    assert installation.finder not in sys.meta_path


def test_non_targets_get_none(hook):
    installation = hook(rules=[rule()])
    assert installation.finder.find_spec("json") is None
    assert installation.finder.find_spec("pickler.sub") is None


def test_a_target_is_patched_and_applied_reports_it(modules, hook):
    modules("pickler", PICKLER_SOURCE)
    hook(rules=[rule()])
    import pickler

    with pytest.raises(pickler.Bypass) as raised:
        pickler.Pickler().dumps(Unpicklable(ValueError("cycle")))
    assert isinstance(raised.value.__cause__, ValueError)
    with pytest.raises(KeyError):  # other errors still propagate unchanged
        pickler.Pickler().dumps(Unpicklable(KeyError("k")))
    (o,) = astpatch.applied()
    assert (o.rule_id, o.module, o.status, o.from_cache) == ("pickler-valueerror", "pickler", oc.APPLIED, False)


def test_module_attributes_are_as_without_astpatch(modules, hook):
    path = modules("pkg.pickler", PICKLER_SOURCE)
    (path.parent / "data.txt").write_text("resource")
    hook(rules=[rule(module="pkg.pickler")])
    module = importlib.import_module("pkg.pickler")
    assert isinstance(module.__spec__.loader, PatchingLoader)
    assert isinstance(module.__loader__, importlib.machinery.SourceFileLoader)
    assert module.__file__ == str(path)
    assert module.__spec__.origin == str(path)
    assert module.__spec__.name == "pkg.pickler"
    assert module.__spec__.cached == importlib.util.cache_from_source(str(path))
    assert pkgutil.get_data("pkg.pickler", "data.txt") == b"resource"
    assert importlib.resources.files("pkg").joinpath("data.txt").read_text() == "resource"
    assert module.__spec__.loader.get_source("pkg.pickler") == PICKLER_SOURCE


def test_no_wrapper_one_frame_and_patched_source_shown(modules, hook):
    path = modules("pickler", PICKLER_SOURCE)
    hook(rules=[rule()])
    import pickler

    dumps = pickler.Pickler.dumps
    assert type(dumps) is type(lambda: None)
    assert not hasattr(dumps, "__wrapped__")
    assert dumps.__code__.co_filename == str(path)
    assert dumps.__module__ == "pickler"
    assert pickler.Pickler.after.__code__.co_firstlineno == 23  # as in the file
    assert pickler.before.__code__.co_firstlineno == 8
    assert "except (TypeError, AttributeError, ValueError) as e:" in inspect.getsource(dumps)

    try:
        dumps(pickler.Pickler(), Unpicklable(KeyError("k")))
    except KeyError as error:
        frames = traceback.extract_tb(error.__traceback__)
    dumps_frames = [f for f in frames if f.name == "dumps"]
    assert len(dumps_frames) == 1
    assert dumps_frames[0].filename == str(path)
    assert dumps_frames[0].lineno == 16
    assert dumps_frames[0].line == "return pickle.dumps(obj)"

    try:
        dumps(pickler.Pickler(), Unpicklable(ValueError("v")))
    except pickler.Bypass as error:
        text = "".join(traceback.format_exception(error))
    assert "except (TypeError, AttributeError, ValueError) as e:" not in text  # not on the raising line
    assert 'raise Bypass("Failed to pickle") from e' in text


def test_upstream_pyc_is_never_written_with_patched_code(modules, hook, monkeypatch):
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    path = modules("pickler", PICKLER_SOURCE)
    installation = hook(rules=[rule()])
    import pickler

    assert "ValueError" in pickler.Pickler.dumps.__code__.co_names
    # The rewrite may read (and Python may write) upstream's own .pyc; it must hold upstream's code.
    pyc = importlib.util.cache_from_source(str(path))
    if os.path.exists(pyc):
        with open(pyc, "rb") as f:
            cached = marshal.loads(f.read()[16:])
        dumps = next(c for c in next(c for c in cached.co_consts if getattr(c, "co_name", "") == "Pickler").co_consts
                     if getattr(c, "co_name", "") == "dumps")
        assert "ValueError" not in dumps.co_names
    installation.uninstall()
    del sys.modules["pickler"]
    import pickler as plain  # without astpatch: upstream's code, and its normal .pyc

    assert "ValueError" not in plain.Pickler.dumps.__code__.co_names
    assert os.path.exists(pyc)


def test_a_failing_rule_warns_once_and_the_module_imports_as_upstream_wrote_it(modules, hook):
    modules("pickler", PICKLER_SOURCE.replace("raise Bypass", "return None  #"))
    hook(rules=[rule()])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import pickler
    ours = [w for w in caught if issubclass(w.category, astpatch.AstpatchWarning)]
    assert [w.filename for w in ours] == [__file__]  # attributed to the import, not to astpatch
    messages = [str(w.message) for w in ours]
    assert messages == [
        "astpatch: rule pickler-valueerror was not applied to pickler: the edit does not apply: no except "
        "clause in Pickler.dumps raises Bypass, and none catches ValueError. pickler is imported without this "
        "fix. Run `astpatch list` to see every rule's state, update astpatch, or set "
        "ASTPATCH_DISABLE=pickler-valueerror to turn the rule off."
    ]
    assert "ValueError" not in pickler.Pickler.dumps.__code__.co_names
    assert [o.status for o in astpatch.applied()] == [oc.FAILED]


def test_target_missing_warns_and_strict_raises(modules, hook):
    modules("pickler", PICKLER_SOURCE)
    hook(rules=[rule(target="Pickler.loads")], strict=True)
    with pytest.raises(astpatch.AstpatchError, match="Pickler.loads is not defined in Pickler"):
        import pickler  # noqa: F401
    assert "pickler" not in sys.modules


def test_already_fixed_runs_upstream_code_byte_for_byte(modules, hook):
    fixed = PICKLER_SOURCE.replace("(TypeError, AttributeError)", "(TypeError, AttributeError, ValueError)")
    path = modules("pickler", fixed)
    hook(rules=[rule()])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # already-fixed is not a warning
        import pickler
    upstream = compile(fixed, str(path), "exec", dont_inherit=True)
    dumps = next(c for c in upstream.co_consts if getattr(c, "co_name", "") == "Pickler").co_consts
    assert pickler.Pickler.dumps.__code__ == next(c for c in dumps if getattr(c, "co_name", "") == "dumps")
    assert [o.status for o in astpatch.applied()] == [oc.ALREADY_FIXED]


def test_second_import_in_another_install_comes_from_the_cache(modules, hook):
    modules("pickler", PICKLER_SOURCE)
    installation = hook(rules=[rule()])
    import pickler  # noqa: F401

    installation.uninstall()
    del sys.modules["pickler"]
    hook(rules=[rule()])
    import pickler as again

    assert "ValueError" in again.Pickler.dumps.__code__.co_names
    assert [(o.status, o.from_cache) for o in astpatch.applied()] == [(oc.APPLIED, False), (oc.APPLIED, True)]


def test_zip_imports_are_left_alone_with_a_warning_naming_the_rule(tmp_path, hook, monkeypatch):
    archive = tmp_path / "mods.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("pickler.py", PICKLER_SOURCE)
    monkeypatch.syspath_prepend(str(archive))
    hook(rules=[rule()])
    try:
        with pytest.warns(astpatch.AstpatchWarning, match="rule pickler-valueerror was not applied to pickler: "
                                                          "pickler is loaded by zipimporter"):
            import pickler
        assert "ValueError" not in pickler.Pickler.dumps.__code__.co_names
    finally:
        sys.modules.pop("pickler", None)


def test_a_target_imported_before_install_gets_the_patched_code_object(modules, hook):
    modules("pickler", PICKLER_SOURCE)
    import pickler

    function = pickler.Pickler.dumps
    held = pickler.Pickler().dumps  # a bound method taken before install() sees the fix too
    hook(rules=[rule()])
    assert pickler.Pickler.dumps is function  # the same function object, no wrapper
    assert "ValueError" in function.__code__.co_names
    with pytest.raises(pickler.Bypass):
        held(Unpicklable(ValueError("late")))
    (o,) = astpatch.applied()
    assert o.status == oc.APPLIED
    assert o.reason.endswith("; applied to the live function because pickler was imported before astpatch.install()")
    assert "ValueError" in inspect.getsource(function)


def test_a_live_function_whose_closure_would_change_is_left_with_a_warning(modules, hook):
    class UsesSuper(astpatch.Edit):
        kind = "uses-super"

        def params(self):
            return {}

        def apply(self, target):
            return astpatch.EditResult.applied_code(target.code.replace("return pickle.dumps(obj)",
                                                                        "return super().__repr__() and pickle.dumps(obj)"))

    modules("pickler", PICKLER_SOURCE)
    import pickler

    before = pickler.Pickler.dumps.__code__
    with pytest.warns(astpatch.AstpatchWarning) as caught:
        hook(rules=[rule(edit=UsesSuper())])
    assert pickler.Pickler.dumps.__code__ is before
    (message,) = [str(w.message) for w in caught]
    assert "pickler was imported before astpatch.install(), and the patched Pickler.dumps needs other closure " \
           "variables than the live one. Call astpatch.install() before anything imports pickler" in message


def test_rule_files_and_bad_rule_files(tmp_path, hook, modules):
    from conftest import RULE_FILE

    good = tmp_path / "rules"
    good.mkdir()
    (good / "pickler_rule.py").write_text(RULE_FILE)
    (good / "broken.py").write_text("RULE = 1/0\n")
    modules("pickler", PICKLER_SOURCE)
    with pytest.warns(astpatch.AstpatchWarning, match=r"rule file .*broken.py failed to load: ZeroDivisionError"):
        installation = hook(rules=[good])
    assert [r.id for r in installation.rules if r.id.startswith("pickler")] == ["pickler-valueerror"]
    import pickler

    assert "ValueError" in pickler.Pickler.dumps.__code__.co_names


def test_the_warning_names_the_installed_version(modules, hook):
    modules("pickler", PICKLER_SOURCE)
    install_dist(modules.root, "pickledist", "1.4")
    hook(rules=[rule(target="Pickler.gone", gate="pickledist>=1")])
    with pytest.warns(astpatch.AstpatchWarning, match=r"not applied to pickler \(pickledist 1\.4\): Pickler\.gone is not"):
        import pickler  # noqa: F401


def test_patched_lines_are_built_only_when_read_and_read_like_a_list(modules, hook):
    import linecache

    from astpatch._base.lines import PatchedLines

    path = modules("pickler", PICKLER_SOURCE)
    hook(rules=[rule()])
    import pickler  # noqa: F401

    size, mtime, lines, fullname = linecache.cache[str(path)]
    assert isinstance(lines, PatchedLines) and lines._pending is not None  # nothing built at import
    assert "".join(lines) == PICKLER_SOURCE.replace("(TypeError, AttributeError)", "(TypeError, AttributeError, ValueError)")
    assert lines._pending is None
    assert len(lines) == PICKLER_SOURCE.count("\n") and lines[16] == "        except (TypeError, AttributeError, ValueError) as e:\n"
    assert list(lines)[-1] == lines[-1] and lines[:2] == ["import pickle\n", "\n"]
    assert linecache.getline(str(path), 17).strip() == "except (TypeError, AttributeError, ValueError) as e:"
    linecache.checkcache(str(path))  # the file is unchanged: the patched text stays
    assert str(path) in linecache.cache


def test_patched_lines_copied_counted_or_added_before_anything_else_read_them(modules, hook):
    """`linecache.getlines(path).copy()`, `.count()`, `.index()`, `+`: the patched text, though nothing read it yet."""
    import linecache

    path = modules("pickler", PICKLER_SOURCE)
    hook(rules=[rule()])
    import pickler

    expected = PICKLER_SOURCE.replace("(TypeError, AttributeError)", "(TypeError, AttributeError, ValueError)")
    reads = {
        "copy()": lambda lines: lines.copy(),
        "count()": lambda lines: lines.count("\n"),
        "index()": lambda lines: lines.index("class Pickler:\n"),
        "list + lines": lambda lines: ["# first\n"] + lines,
        "lines + list": lambda lines: lines + ["# last\n"],
    }
    for name, read in reads.items():
        importlib.reload(pickler)  # a new entry, which nothing has read
        assert linecache.cache[str(path)][2]._pending is not None
        assert read(linecache.getlines(str(path))) == read(expected.splitlines(keepends=True)), name


LINES = ["a\n", "b\n", "a\n", "c"]

# How each method of list is called on the lines; a name list gains in a new Python must be added
# here or to NOT_ITEMS, or the test below fails.
LIST_CALLS = {
    "__add__": (["z\n"],), "__contains__": ("b\n",), "__delitem__": (0,), "__eq__": (LINES,), "__format__": ("",),
    "__ge__": (LINES,), "__getitem__": (slice(1, 3),), "__gt__": (["a\n"],), "__iadd__": (["z\n"],), "__imul__": (2,),
    "__iter__": (), "__le__": (LINES,), "__len__": (), "__lt__": (["b\n"],), "__mul__": (2,), "__ne__": (LINES,),
    "__reduce__": (), "__reduce_ex__": (4,), "__repr__": (), "__reversed__": (), "__rmul__": (2,),
    "__setitem__": (1, "x\n"), "__sizeof__": (), "__str__": (), "append": ("z\n",), "clear": (), "copy": (),
    "count": ("a\n",), "extend": (["z\n"],), "index": ("c",), "insert": (1, "z\n"), "pop": (), "remove": ("a\n",),
    "reverse": (), "sort": (),
}
# Names of list that do not read its items: the type's and the instance's machinery.
NOT_ITEMS = {"__class__", "__class_getitem__", "__delattr__", "__dir__", "__doc__", "__getattribute__",
             "__getstate__",  # the instance's slots (copy and pickle call __reduce_ex__, called above)
             "__hash__", "__init__", "__init_subclass__", "__new__", "__setattr__", "__subclasshook__"}


def lazy_lines():  # type: ignore[no-untyped-def]
    from astpatch._base.lines import PatchedLines

    return PatchedLines(lambda: list(LINES))


def comparable(result):  # type: ignore[no-untyped-def]
    """A result as plain data: lists and iterators as lists, a reduction as the list it rebuilds."""
    if isinstance(result, tuple) and result and callable(result[0]):  # __reduce__, __reduce_ex__
        rebuilt = result[0](*result[1])
        if len(result) > 3 and result[3] is not None:  # the list items
            rebuilt.extend(result[3])
        return ("rebuilt", type(rebuilt) is list, list(rebuilt))
    if isinstance(result, list) or hasattr(result, "__next__"):
        return list(result)
    return result


def test_patched_lines_are_made_by_every_method_of_list():
    """Each method of list (from dir(list)) on unread lines gives what it gives on a list of the same lines."""
    unknown = set(dir(list)) - set(LIST_CALLS) - NOT_ITEMS
    assert not unknown, f"list has {sorted(unknown)}: add them to LIST_CALLS (or NOT_ITEMS if they read no item)"
    for name in sorted(set(dir(list)) & set(LIST_CALLS)):
        lines, plain, made = lazy_lines(), list(LINES), lazy_lines()
        list(made)  # its lines made: the oracle for __sizeof__, whose object differs from a plain list's
        got = comparable(getattr(lines, name)(*LIST_CALLS[name]))
        oracle = made if name == "__sizeof__" else plain
        # A plain list has no reduction of its own but the one for pickle protocols 2 and later.
        oracle_name, oracle_args = ("__reduce_ex__", (4,)) if name == "__reduce__" else (name, LIST_CALLS[name])
        assert got == comparable(getattr(oracle, oracle_name)(*oracle_args)), name
        assert list.copy(lines) == list.copy(oracle), name  # what is left, read without making anything
        assert list(lines) == list(oracle), name


def extended(target: list, source: list) -> list:
    target.extend(source)
    return target


def replaced(target: list, source: list) -> list:
    target[:0] = source
    return target


def test_patched_lines_are_made_by_every_operator_and_reader():
    """Operators (either side) and the builtins and modules that read a list give the lines, unread or not."""
    import copy
    import json
    import operator
    import pickle

    operations = {
        "list()": lambda x, y: list(x), "tuple()": lambda x, y: tuple(x), "sorted()": lambda x, y: sorted(x),
        "join": lambda x, y: "".join(x), "unpacking": lambda x, y: [*x], "set()": lambda x, y: set(x),
        "max()": lambda x, y: max(x), "enumerate": lambda x, y: list(enumerate(x)), "len()": lambda x, y: len(x),
        "bool()": lambda x, y: bool(x), "repr()": lambda x, y: repr(x), "str()": lambda x, y: str(x),
        "f-string": lambda x, y: f"{x}", "in": lambda x, y: "c" in x, "not in": lambda x, y: "d" not in x,
        "reversed()": lambda x, y: list(reversed(x)), "x[i]": lambda x, y: x[-1], "x[:]": lambda x, y: x[:],
        "x[::2]": lambda x, y: x[::2], "x + list": lambda x, y: x + ["z\n"], "list + x": lambda x, y: ["z\n"] + x,
        "x + y": lambda x, y: x + y, "x * 2": lambda x, y: x * 2, "2 * x": lambda x, y: 2 * x,
        "x == list": lambda x, y: x == LINES, "list == x": lambda x, y: LINES == x, "x == y": lambda x, y: x == y,
        "list != x": lambda x, y: LINES != x, "list < x": lambda x, y: ["a\n"] < x, "x <= y": lambda x, y: x <= y,
        "x > y": lambda x, y: x > y, "x += list": lambda x, y: operator.iadd(x, ["z\n"]),
        "list += x": lambda x, y: operator.iadd(["z\n"], x), "x *= 2": lambda x, y: operator.imul(x, 2),
        "list.extend(x)": lambda x, y: extended(["z\n"], x), "x.extend(y)": lambda x, y: extended(x, y),
        "list[:0] = x": lambda x, y: replaced(["z\n"], x), "copy.copy()": lambda x, y: copy.copy(x),
        "copy.deepcopy()": lambda x, y: copy.deepcopy(x), "json": lambda x, y: json.dumps(x),
        "pickle": lambda x, y: pickle.loads(pickle.dumps(x)),
        "pickle, protocol 0": lambda x, y: pickle.loads(pickle.dumps(x, protocol=0)),
    }
    for name, operation in operations.items():
        got = operation(lazy_lines(), lazy_lines())
        expected = operation(list(LINES), list(LINES))
        assert comparable(got) == comparable(expected), name
        if isinstance(got, list):
            assert list.copy(got) == list.copy(expected), name  # the result holds the lines, read as they are


def test_patched_lines_read_by_a_thread_while_another_makes_them():
    """A thread reading the lines while another thread makes them waits for them, rather than see none."""
    import threading

    from astpatch._base.lines import PatchedLines

    making, release = threading.Event(), threading.Event()

    def make() -> list[str]:
        making.set()
        release.wait(10)
        return list(LINES)

    lines = PatchedLines(make)
    seen: list = []
    first = threading.Thread(target=lambda: seen.append(("first", lines.copy())))
    first.start()
    assert making.wait(10)
    second = threading.Thread(target=lambda: seen.append(("second", lines.copy())))
    second.start()
    second.join(0.2)  # time to read, were it not made to wait
    release.set()
    first.join(10)
    second.join(10)
    assert sorted(seen) == [("first", LINES), ("second", LINES)]


OTHER_ARGUMENTS = {
    "rules": dict(rules=[rule(edit=astpatch.AddExceptTypes(add=("KeyError",), converts_to="Bypass"))]),
    "cache_dir": dict(cache_dir=False),
    "strict": dict(strict=True),
}
IGNORED = ("astpatch: install() was called again with other arguments while astpatch is installed; they are ignored "
           "and the first installation stays. Call astpatch.uninstall() first to install with other rules, cache or "
           "strictness.")


@pytest.mark.parametrize("changed", OTHER_ARGUMENTS)
def test_a_second_install_with_other_arguments_returns_the_first_and_warns(hook, tmp_path, changed):
    """A second install() asking for something else cannot get it: it is told so, once."""
    first = hook(rules=[rule()])
    arguments = {"rules": [rule()], "cache_dir": tmp_path / "cache", "strict": False, **OTHER_ARGUMENTS[changed]}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = astpatch.install(**arguments)
    assert again is first and first.active
    assert [(str(w.message), w.filename) for w in caught if issubclass(w.category, astpatch.AstpatchWarning)] == [
        (IGNORED, __file__)]
    assert [r.fingerprint() for r in first.rules if r.id.startswith("pickler")] == [rule().fingerprint()]
    assert first.cache.directory == str(tmp_path / "cache") and not first.strict


def test_a_second_install_with_the_same_arguments_is_silent(hook, tmp_path):
    """Installing twice with the same request (a library and its user, say) is not worth a warning."""
    first = hook(rules=[rule()])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # Rules compare by what they do, not by identity; a path compares as its text.
        assert astpatch.install(rules=[rule()], cache_dir=str(tmp_path / "cache")) is first


def test_a_second_install_with_other_arguments_raises_when_the_first_is_strict(hook, tmp_path):
    """Strict mode turns the ignored arguments into an error, and the first installation stays."""
    first = hook(rules=[rule()], strict=True)
    with pytest.raises(astpatch.AstpatchError) as raised:
        astpatch.install(rules=[rule()], cache_dir=tmp_path / "cache")  # strict=False: other arguments
    assert str(raised.value) == IGNORED
    assert first.active and sys.meta_path[0] is first.finder
