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
from astpatch._hook.finder import PatchingFinder
from astpatch._hook.loader import PatchingLoader

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
