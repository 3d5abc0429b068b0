"""The warm path (a cache hit) in a bare interpreter: it imports nothing CPython does not load at
start-up, and the patched text still reaches `linecache` when the program imports it later."""

from __future__ import annotations

from conftest import PICKLER_SOURCE
from scenario import Scenario

PATCHED_SOURCE = PICKLER_SOURCE.replace("(TypeError, AttributeError)", "(TypeError, AttributeError, ValueError)")

# The modules `import pickler` adds to sys.modules, under astpatch (installed first) or without it.
ADDED = '''
import json, sys
{install}
before = set(sys.modules)
import pickler
added = sorted(set(sys.modules) - before)
import astpatch
print(json.dumps({{"added": added, "outcomes": [[o.status, o.from_cache] for o in astpatch.applied()],
                  "patched": "ValueError" in pickler.Pickler.dumps.__code__.co_names}}))
'''


def test_a_cache_hit_imports_nothing(tmp_path):
    """A warm import adds to sys.modules what the same import without astpatch adds (the oracle), and
    nothing else: what the hit runs was loaded with the finder by install(); no linecache, zlib,
    importlib.util, nor the engine (the text goes to linecache when the interpreter has it from
    start-up, as CPython 3.13 does)."""
    s = Scenario(tmp_path)
    install = f"import astpatch\nastpatch.install({s.install_args()})"
    cold = s.python(ADDED.format(install=install)).json()
    warm = s.python(ADDED.format(install=install)).json()
    plain = s.python(ADDED.format(install="")).json()
    assert cold["outcomes"] == [["applied", False]] and warm["outcomes"] == [["applied", True]]
    assert warm["patched"] and not plain["patched"]
    assert "pickle" in plain["added"]  # the target's own imports are part of the oracle
    assert warm["added"] == plain["added"]


# linecache imported only after the patched module: what it shows, and whether astpatch's loader for
# it is gone (the module and its spec name linecache's own loader).
LATER = '''
import json, sys
sys.modules.pop("linecache", None)  # a program that has not imported it (CPython 3.13 does at start-up)
import astpatch
handle = astpatch.install({install_args})
import pickler
early = "linecache" in sys.modules
{between}
import inspect, linecache
from importlib.machinery import SourceFileLoader
print(json.dumps({{
    "early": early,
    "text": "".join(linecache.getlines(pickler.__file__)),
    "line": linecache.getline(pickler.__file__, 17),
    "function": inspect.getsource(pickler.Pickler.dumps),
    "loader": [type(linecache.__loader__) is SourceFileLoader, linecache.__spec__.loader is linecache.__loader__],
    "from_cache": [o.from_cache for o in astpatch.applied()],
}}))
'''


def function_text(source: str) -> str:
    """`Pickler.dumps` as `inspect.getsource` gives it, cut from `source`."""
    lines = source.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith("    def dumps"))
    end = next(i for i, line in enumerate(lines) if line.startswith("    def after"))
    return "".join(lines[start:end]).rstrip("\n") + "\n"


def test_linecache_imported_after_the_patched_module_shows_the_patched_text(tmp_path):
    """The warm import leaves linecache alone; imported later, it shows the text that runs, and its
    module is as without astpatch. The cold import gives the same text."""
    s = Scenario(tmp_path)
    program = LATER.format(install_args=s.install_args(), between="")
    for run, from_cache in ((s.python(program).json(), False), (s.python(program).json(), True)):
        assert run["from_cache"] == [from_cache]
        assert run["text"] == PATCHED_SOURCE
        assert run["line"] == "        except (TypeError, AttributeError, ValueError) as e:\n"
        assert run["function"] == function_text(PATCHED_SOURCE) != function_text(PICKLER_SOURCE)
        assert run["loader"] == [True, True]
    assert run["early"] is False  # the warm import did not import linecache


def test_text_waiting_for_linecache_is_given_to_it_when_astpatch_is_uninstalled(tmp_path):
    """After uninstall() no finder sees linecache's import: the text waiting for it is given to it then."""
    s = Scenario(tmp_path)
    program = LATER.format(install_args=s.install_args(), between="astpatch.uninstall()")
    s.python(program).json()  # fills the cache
    run = s.python(program).json()
    assert run["from_cache"] == [True] and run["early"] is False
    assert run["text"] == PATCHED_SOURCE and run["loader"] == [True, True]


def test_a_cache_key_reads_back_field_for_field():
    """An entry's recorded key is compared as a tuple in the order of CacheKey's fields."""
    from astpatch._base.cache import CacheKey

    fields = {name: f"value of {name}" for name in CacheKey.__slots__}
    key = CacheKey(**fields)  # type: ignore[arg-type]
    assert key.as_tuple() == tuple(fields.values())
    assert CacheKey.from_tuple(key.as_tuple()) == key
