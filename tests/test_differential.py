"""What runs is what the patched text says: astpatch's import against a plain import of that text.

For each case of a corpus (modules' text and rules on them), the patched text is what astpatch
shows (`evaluate`, the text of `astpatch diff`) and, independently, the rules' declared change made
with plain string replacements; the two must be equal. That text is written to ordinary files and
imported plainly in one process; the original modules are imported under `install(rules=...)` in a
fresh process with an empty cache, and again in a second process served from the cache. In all
three, every function and class of each module, recursively, and the module's own code, must be
the same: code objects field by field (bytecode, constants recursively, names, variables, cells,
flags, argument counts, qualified names, exception tables), defaults, keyword defaults,
annotations, type parameters, closures, what decorators set, class members, the module's names.

Line numbers differ by design: the lines an edit does not touch keep the file's numbers, and the
new lines of an edit that changes the line count are numbered past the end of the file, where
`linecache` shows them (`astpatch._base.lines`). So line tables and positions are compared through
that mapping: each line number (of an instruction, a code object's first line, a class's
`__firstlineno__`) is replaced by the text `linecache` shows for it (the file's text in the plain
import, astpatch's registered text in the other), columns as they are. Left out: where an
instruction ends when it spans lines (a statement around a function whose line count changed ends
where the file shows that function, which is not where its new text ends).

A rule whose result is not exactly its target (or, for a whole-change rule, not what it declares)
is `failed`, and then the import must equal a plain import of the original text.

The wheels part does the same, in process, for real modules read from torch's released wheels:
astpatch's compiled module against `compile()` of the patched text.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from astpatch._base import outcomes as oc
from astpatch._base.lines import linecache_lines, patched_lines, split_lines
from astpatch._engine.rewrite import rewrite
from astpatch._inspect.evaluate import evaluate
from astpatch._inspect.sources import Directory
from astpatch._model.rulefiles import load_rule_file

from conftest import clean_env

# What a process imports, described as plain data (run as a script in the subprocesses, and exec'd
# here for the wheels part, which has code objects and no modules).
PROBE = '''
import importlib
import json
import linecache
import sys
import types

SIMPLE = (bool, int, float, complex, str, bytes, type(None), type(Ellipsis))
CODE_FIELDS = ("co_argcount", "co_posonlyargcount", "co_kwonlyargcount", "co_nlocals", "co_stacksize", "co_flags",
               "co_names", "co_varnames", "co_freevars", "co_cellvars", "co_name", "co_qualname")
PATHS = {"__file__", "__cached__", "__spec__", "__loader__", "__path__", "__builtins__"}


def text(lines, number):
    """The text shown for line `number`: what the line tables are compared by."""
    if number is None:
        return None
    return lines[number - 1] if 0 < number <= len(lines) else "<no such line>"


def plain(value, depth=0):
    if isinstance(value, SIMPLE):
        return repr(value)
    if isinstance(value, (tuple, list, set, frozenset)) and depth < 6:
        items = [plain(v, depth + 1) for v in value]
        if isinstance(value, (set, frozenset)):
            items.sort(key=json.dumps)
        return [type(value).__name__, items]
    if isinstance(value, dict) and depth < 6:
        return ["dict", [[plain(k, depth + 1), plain(v, depth + 1)] for k, v in value.items()]]
    if isinstance(value, type):
        return f"class {value.__module__}.{value.__qualname__}"
    if isinstance(value, (types.FunctionType, types.BuiltinFunctionType)):
        return f"function {value.__module__}.{value.__qualname__}"
    if isinstance(value, types.ModuleType):
        return f"module {value.__name__}"
    if type(value).__module__ == "typing":  # TypeVar, ParamSpec...: their repr is their name
        return f"typing {value!r}"
    return f"instance of {type(value).__module__}.{type(value).__qualname__}"


def first_line_constant(code):
    """The index in co_consts of a class body's `__firstlineno__` (Python 3.13+), a line number."""
    import dis

    instructions = list(dis.get_instructions(code))
    for load, store in zip(instructions, instructions[1:]):
        if load.opname == "LOAD_CONST" and store.opname == "STORE_NAME" and store.argval == "__firstlineno__":
            return load.arg
    return None


def code_shape(code, lines, filename):
    shape = {f: plain(getattr(code, f)) for f in CODE_FIELDS if hasattr(code, f)}
    shape["co_code"] = code.co_code.hex()
    if hasattr(code, "co_exceptiontable"):
        shape["co_exceptiontable"] = code.co_exceptiontable.hex()
    line_constant = first_line_constant(code)
    shape["co_consts"] = [code_shape(c, lines, filename) if isinstance(c, types.CodeType)
                          else ["the line", text(lines, c)] if i == line_constant else plain(c)
                          for i, c in enumerate(code.co_consts)]
    shape["in_the_module_file"] = code.co_filename == filename
    shape["first_line"] = text(lines, code.co_firstlineno)
    shape["lines"] = [[start, end, text(lines, line)] for start, end, line in code.co_lines()]
    if hasattr(code, "co_positions"):
        # Where an instruction that spans lines ends is left out (see the module's docstring).
        shape["positions"] = [[text(lines, line), column, end_column if end == line else "several lines"]
                              for line, end, column, end_column in code.co_positions()]
    return shape


def describe(value, module, lines, filename, qualname):
    """A function or class defined at `qualname` in `module`, in full; anything else as plain data."""
    defined = getattr(value, "__module__", None) == module and getattr(value, "__qualname__", None) == qualname
    if isinstance(value, types.FunctionType) and getattr(value, "__module__", None) == module:
        return function_shape(value, module, lines, filename)
    if isinstance(value, type) and defined:
        return class_shape(value, module, lines, filename)
    if isinstance(value, (staticmethod, classmethod)):
        return [type(value).__name__, describe(value.__func__, module, lines, filename, qualname)]
    if isinstance(value, property):
        accessors = (value.fget, value.fset, value.fdel)
        return ["property", *(describe(f, module, lines, filename, qualname) for f in accessors), plain(value.__doc__)]
    if hasattr(value, "__wrapped__") and not isinstance(value, type):  # a decorator's object around a function
        return ["wrapper", plain(value), describe(value.__wrapped__, module, lines, filename, qualname)]
    return plain(value)


def function_shape(function, module, lines, filename):
    cells = []
    for cell in function.__closure__ or ():
        try:
            cells.append(plain(cell.cell_contents))
        except ValueError:
            cells.append("<empty cell>")
    return {
        "type": type(function).__name__, "name": function.__name__, "qualname": function.__qualname__,
        "code": code_shape(function.__code__, lines, filename), "defaults": plain(function.__defaults__),
        "kwdefaults": plain(function.__kwdefaults__), "annotations": plain(function.__annotations__),
        "type_params": plain(getattr(function, "__type_params__", ())), "doc": plain(function.__doc__),
        "closure": cells,
        "attributes": {k: describe(v, module, lines, filename, f"{function.__qualname__}.{k}")
                       for k, v in vars(function).items()},
    }


def class_shape(cls, module, lines, filename):
    members = {}
    for name, value in vars(cls).items():
        if name in ("__dict__", "__weakref__"):
            continue
        if name == "__firstlineno__":  # a line number: compared by its text
            members[name] = text(lines, value)
        else:
            members[name] = describe(value, module, lines, filename, f"{cls.__qualname__}.{name}")
    return {"qualname": cls.__qualname__, "bases": [plain(b) for b in cls.__bases__], "metaclass": plain(type(cls)),
            "type_params": plain(getattr(cls, "__type_params__", ())), "members": members}


def module_shape(module):
    filename = module.__file__
    lines = linecache.getlines(filename)  # astpatch's registered text for a patched module
    code = module.__spec__.loader.get_code(module.__name__)
    return {
        "names": sorted(dir(module)),
        "code": code_shape(code, lines, filename),
        "values": {name: describe(value, module.__name__, lines, filename, name)
                   for name, value in sorted(vars(module).items()) if name not in PATHS},
    }


def main():
    mode, directory, names, out = sys.argv[1], sys.argv[2], sys.argv[3].split(","), sys.argv[4]
    sys.path.insert(0, directory)
    result = {"modules": {}, "outcomes": []}
    if mode == "astpatch":
        import astpatch

        astpatch.install(rules=[sys.argv[5]], cache_dir=sys.argv[6])
    imported = {}
    for name in names:
        try:
            imported[name] = importlib.import_module(name)
        except Exception as error:
            result["modules"][name] = f"the import raised {type(error).__name__}: {error}"
    if mode == "astpatch":  # before module_shape gets each module's code again
        result["outcomes"] = [[o.rule_id, o.module, o.status, o.reason, o.from_cache] for o in astpatch.applied()]
    for name, module in imported.items():
        result["modules"][name] = module_shape(module)
    with open(out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
'''

# Every rule file of the corpus starts with this: the shipped kinds and two custom ones.
RULES_PRELUDE = '''\
from astpatch import (AddExceptClause, AddExceptTypes, ApplyHunks, Change, Edit, EditResult, Hunk, KeyWithRules,
                      Rule)


class Replace(Edit):
    """A custom text edit: `old` replaced by `new` in the target's source, where it occurs once."""

    kind = "replace"

    def __init__(self, old, new):
        self.old, self.new = old, new

    def params(self):
        return {"old": self.old, "new": self.new}

    def apply(self, target):
        if target.code.count(self.old) != 1:
            return EditResult.no_match(f"{self.old!r} occurs {target.code.count(self.old)} times")
        return EditResult.applied_code(target.code.replace(self.old, self.new))


class RenameNode(Edit):
    """A custom libcst edit: the same function under another name."""

    kind = "rename-node"

    def __init__(self, name):
        self.name = name

    def params(self):
        return {"name": self.name}

    def apply(self, target):
        import libcst as cst

        return EditResult.applied(target.node.with_changes(name=cst.Name(self.name)))


def rule(id, module, target, edit):
    return Rule(id=id, summary=id, upstream="the differential corpus", module=module, target=target, edit=edit)


def whole(id, *changes):
    return Rule(id=id, summary=id, upstream="the differential corpus", changes=list(changes))


'''


class Case:
    """Modules, the rules on them (a rule file's body after RULES_PRELUDE, listing RULES), the text
    each module must have after them (`replacements`: (old, new) pairs, each `old` occurring once),
    and each rule's expected status (with a piece of its reason, for the failures)."""

    def __init__(self, name: str, modules: dict[str, str], rules: str, replacements: dict[str, list[tuple[str, str]]],
                 statuses: dict[str, str], reasons: dict[str, str] | None = None,
                 python: tuple[int, int] = (3, 10)) -> None:
        self.name = name
        self.modules = {m: textwrap.dedent(t).lstrip("\n") for m, t in modules.items()}
        self.body = textwrap.dedent(rules).lstrip("\n")
        self.replacements = replacements
        self.statuses = statuses
        self.reasons = reasons or {}
        self.python = python

    @property
    def rules(self) -> str:
        return RULES_PRELUDE + self.body

    def expected(self, module: str) -> str:
        """The patched text, made with plain string replacements."""
        text = self.modules[module]
        for old, new in self.replacements.get(module, []):
            assert text.count(old) == 1, f"{self.name}: {old!r} occurs {text.count(old)} times in {module}"
            text = text.replace(old, new)
        return text

    def with_future_annotations(self) -> Case:
        """The same case on modules (renamed) that start with `from __future__ import annotations`."""
        renamed = {m: m.replace(".", "_future.", 1) if "." in m else f"{m}_future" for m in self.modules}

        def swap(text: str) -> str:
            for old in sorted(renamed, key=len, reverse=True):
                text = text.replace(f'"{old}"', f'"{renamed[old]}"')
            return text

        future = "from __future__ import annotations\n"
        return Case(f"{self.name}-future", {renamed[m]: future + t if t else t for m, t in self.modules.items()},
                    swap(self.body).replace('rule("', 'rule("future-').replace('whole("', 'whole("future-'),
                    {renamed[m]: [(swap(o), swap(n)) for o, n in r] for m, r in self.replacements.items()},
                    {f"future-{r}": s for r, s in self.statuses.items()},
                    {f"future-{r}": s for r, s in self.reasons.items()}, self.python)

    def __repr__(self) -> str:
        return self.name


PICKLER = '''\
    import pickle


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

        def after(self):
            return "after"
    '''
CLAUSE = '''\
        except RuntimeError as e:
            if "pickleable" in str(e):
                raise Bypass("Failed to pickle") from e
            raise
'''
RAISE = '            raise Bypass("Failed to pickle") from e\n'

GENERICS = """\
    class Bypass(Exception):
        pass


    class Box[T]:
        def __init__(self, item: T) -> None:
            self.item = item

        def get(self) -> T:
            return self.item


    def first[T](items: list[T]) -> T:
        return items[0]


    class Pair[K, V]:
        def key(self) -> K:
            return self.k


    def dumps(obj):
        try:
            return repr(obj)
        except TypeError as e:
            raise Bypass() from e
    """

CASES = [
    Case("except-types", {"dt_types": PICKLER}, r'''
        RULES = [rule("dt-types", "dt_types", "Pickler.dumps",
                      AddExceptTypes(add=("ValueError",), converts_to="Bypass"))]
        ''', {"dt_types": [("(TypeError, AttributeError)", "(TypeError, AttributeError, ValueError)")]},
        {"dt-types": oc.APPLIED}),
    Case("except-clause", {"dt_clause": PICKLER}, rf'''
        RULES = [
            rule("dt-clause-types", "dt_clause", "Pickler.dumps",
                 AddExceptTypes(add=("ValueError",), converts_to="Bypass")),
            rule("dt-clause", "dt_clause", "Pickler.dumps",
                 AddExceptClause(clause={CLAUSE!r}, after_clause_raising="Bypass")),
        ]
        ''', {"dt_clause": [("(TypeError, AttributeError)", "(TypeError, AttributeError, ValueError)"),
                            (RAISE, RAISE + CLAUSE)]},
        {"dt-clause-types": oc.APPLIED, "dt-clause": oc.APPLIED}),
    Case("hunks-function", {"dt_hunk_function": """
        import re


        def parse(text):
            words = text.split()
            return words


        def after(text):
            return parse(text)[0]
        """}, r'''
        RULES = [rule("dt-hunk-function", "dt_hunk_function", "parse", ApplyHunks(hunks=[Hunk(
            before=["    words = text.split()"],
            after=["    words = text.split()", "    words = [re.sub(',', '', w) for w in words]"],
        )]))]
        ''', {"dt_hunk_function": [("    words = text.split()\n",
                                     "    words = text.split()\n    words = [re.sub(',', '', w) for w in words]\n")]},
        {"dt-hunk-function": oc.APPLIED}),
    Case("hunks-class", {"dt_hunk_class": """
        class Parser:
            limit = 3

            def parse(self, text):
                return text.split()[: self.limit]


        class Other(Parser):
            pass
        """}, r'''
        RULES = [whole("dt-hunk-class", Change(module="dt_hunk_class", scope="Parser", edit=ApplyHunks(hunks=[
            Hunk(before=["    limit = 3"], after=["    limit = 3", "    strict: bool = False"]),
            Hunk(before=["        return text.split()[: self.limit]"],
                 after=["        return text.split()[: self.limit]", "", "    def count(self, text) -> int:",
                        "        return len(self.parse(text))"]),
        ])))]
        ''', {"dt_hunk_class": [("    limit = 3\n", "    limit = 3\n    strict: bool = False\n"),
                                ("[: self.limit]\n", "[: self.limit]\n\n    def count(self, text) -> int:\n"
                                                     "        return len(self.parse(text))\n")]},
        {"dt-hunk-class": oc.APPLIED}),
    Case("hunks-module", {"dt_hunk_module": """
        import os

        SETTINGS = {"limit": 3}


        def helper(x):
            return x + 1


        class Thing:
            def method(self):
                return helper(1)
        """}, r'''
        RULES = [
            whole("dt-hunk-module", Change(module="dt_hunk_module", scope="", edit=ApplyHunks(hunks=[
                Hunk(before=['SETTINGS = {"limit": 3}'],
                     after=['SETTINGS = {"limit": 3, "clean": True}', "EXTRA = os.sep"]),
                Hunk(before=["    return x + 1"],
                     after=["    return x + 1", "", "", "def helper2(x):", "    return helper(x) * 2"]),
            ]))),
            rule("dt-hunk-module-method", "dt_hunk_module", "Thing.method", Replace("helper(1)", "helper(1) + 1")),
        ]
        ''', {"dt_hunk_module": [
            ('SETTINGS = {"limit": 3}\n', 'SETTINGS = {"limit": 3, "clean": True}\nEXTRA = os.sep\n'),
            ("    return x + 1\n", "    return x + 1\n\n\ndef helper2(x):\n    return helper(x) * 2\n"),
            ("helper(1)\n", "helper(1) + 1\n")]},
        {"dt-hunk-module": oc.APPLIED, "dt-hunk-module-method": oc.APPLIED}),
    Case("key-with-rules", {"dt_keypkg": "", "dt_keypkg.codecache": """
        import hashlib


        def source_key():
            digest = hashlib.sha256(b"source").hexdigest()
            if not digest:
                return None
            return digest, 1


        def dumps(obj):
            try:
                return repr(obj)
            except TypeError as e:
                raise Bypass() from e


        class Bypass(Exception):
            pass
        """}, r'''
        RULES = [
            rule("dt-key", "dt_keypkg.codecache", "source_key", KeyWithRules(package="dt_keypkg")),
            rule("dt-key-dumps", "dt_keypkg.codecache", "dumps",
                 AddExceptTypes(add=("ValueError",), converts_to="Bypass")),
        ]
        ''', {"dt_keypkg.codecache": [
            ("return None\n", 'return __import__("astpatch").key_with_rules(None, "dt_keypkg")\n'),
            ("return digest, 1\n", 'return __import__("astpatch").key_with_rules((digest, 1), "dt_keypkg")\n'),
            ("except TypeError as e:", "except (TypeError, ValueError) as e:")]},
        {"dt-key": oc.APPLIED, "dt-key-dumps": oc.APPLIED}),
    # D1: an edit of the `def` line (parameters, defaults) runs as written.
    Case("signature", {"dt_signature": """
        def scale(x, factor):
            return x * factor


        class Store:
            def get(self, key, default=None):
                return default

            def put(self, key, *, replace=False):
                return replace

            def keep(self, key):
                return key
        """}, r'''
        RULES = [
            rule("dt-signature", "dt_signature", "scale", Replace(
                "(x, factor):\n    return x * factor", "(x, factor, offset=0):\n    return x * factor + offset")),
            rule("dt-default", "dt_signature", "Store.get", Replace("default=None", "default=0")),
            rule("dt-kwonly", "dt_signature", "Store.put",
                 Replace("replace=False)", "replace=False, strict: bool = True)")),
        ]
        ''', {"dt_signature": [
            ("(x, factor):\n    return x * factor", "(x, factor, offset=0):\n    return x * factor + offset"),
            ("default=None", "default=0"),
            ("replace=False)", "replace=False, strict: bool = True)")]},
        {"dt-signature": oc.APPLIED, "dt-default": oc.APPLIED, "dt-kwonly": oc.APPLIED}),
    # D1 on 3.10 too: the same kind of edits beside one that changes another function's line count.
    Case("signature-moved", {"dt_signature_moved": """
        def scale(x, factor):
            return x * factor


        class Store:
            def get(self, key, default=None):
                return default

            def keep(self, key):
                return key
        """}, r'''
        RULES = [
            rule("dt-moved-scale", "dt_signature_moved", "scale", Replace("factor):", "factor=2):")),
            rule("dt-moved-get", "dt_signature_moved", "Store.get", Replace("default=None", "default=()")),
            rule("dt-moved-keep", "dt_signature_moved", "Store.keep",
                 Replace("        return key\n", "        key = str(key)\n        return key\n")),
        ]
        ''', {"dt_signature_moved": [("factor):", "factor=2):"), ("default=None", "default=()"),
                                     ("        return key\n", "        key = str(key)\n        return key\n")]},
        {"dt-moved-scale": oc.APPLIED, "dt-moved-get": oc.APPLIED, "dt-moved-keep": oc.APPLIED}),
    Case("decorators", {"dt_decorators": """
        import functools


        def tag(name):
            def mark(function):
                function.tag = name
                return function
            return mark


        def traced(function):
            @functools.wraps(function)
            def wrapper(*args, **kwargs):
                return function(*args, **kwargs)
            wrapper.traced = True
            return wrapper


        class Service:
            @tag("old")
            def run(self):
                return 1

            def stop(self):
                return 2


        def plain(x):
            return x
        """}, r'''
        RULES = [
            rule("dt-decorator-changed", "dt_decorators", "Service.run", Replace('@tag("old")', '@tag("new")')),
            rule("dt-decorator-added", "dt_decorators", "Service.stop",
                 Replace("    def stop", '    @tag("added")\n    def stop')),
            rule("dt-decorator-wrapper", "dt_decorators", "plain", Replace("def plain", "@traced\ndef plain")),
        ]
        ''', {"dt_decorators": [('@tag("old")', '@tag("new")'), ("    def stop", '    @tag("added")\n    def stop'),
                                ("def plain", "@traced\ndef plain")]},
        {"dt-decorator-changed": oc.APPLIED, "dt-decorator-added": oc.APPLIED, "dt-decorator-wrapper": oc.APPLIED}),
    # A whole change: a helper added at the top level, and the method that calls it.
    Case("helper", {"dt_helper": """
        LIMIT = 3


        class Parser:
            def parse(self, text):
                words = text.split()
                return words[:LIMIT]
        """}, r'''
        RULES = [whole("dt-helper",
            Change(module="dt_helper", scope="", edit=ApplyHunks(hunks=[Hunk(
                before=["LIMIT = 3", "", ""],
                after=["LIMIT = 3", "", "", "def _clean(words):", "    return [w.strip(',') for w in words]", "", ""],
            )])),
            Change(module="dt_helper", scope="Parser.parse", edit=ApplyHunks(hunks=[Hunk(
                before=["        words = text.split()"], after=["        words = _clean(text.split())"],
            )])),
        )]
        ''', {"dt_helper": [
            ("LIMIT = 3\n\n\n", "LIMIT = 3\n\n\ndef _clean(words):\n    return [w.strip(',') for w in words]\n\n\n"),
            ("words = text.split()", "words = _clean(text.split())")]},
        {"dt-helper": oc.APPLIED}),
    # A whole change: a method renamed (the class body's change) and its caller.
    Case("rename-method", {"dt_rename": """
        class Api:
            def old_name(self):
                return "value"

            def other(self):
                return None

            def call(self):
                return self.old_name()
        """}, r'''
        RULES = [whole("dt-rename",
            Change(module="dt_rename", scope="Api", edit=ApplyHunks(hunks=[Hunk(
                before=["    def old_name(self):"], after=["    def new_name(self) -> str:"])])),
            Change(module="dt_rename", scope="Api.call", edit=Replace("self.old_name()", "self.new_name()")),
        )]
        ''', {"dt_rename": [("def old_name(self):", "def new_name(self) -> str:"),
                            ("self.old_name()", "self.new_name()")]},
        {"dt-rename": oc.APPLIED}),
    Case("nested", {"dt_nested": """
        def build(items):
            total = 0

            def inner(item):
                return item * 2

            for item in items:
                total += inner(item)
            return total


        def walk(tree):
            def visit(node):
                return [node]
            return visit(tree)


        class Holder:
            def method(self):
                def helper():
                    return self
                return helper()
        """}, r'''
        RULES = [
            rule("dt-nested-inner", "dt_nested", "build.inner",
                 Replace("        return item * 2\n", "        item = item + 1\n        return item * 2\n")),
            rule("dt-nested-outer", "dt_nested", "walk",
                 Replace("        return [node]\n", "        found = [node]\n        return found\n")),
            rule("dt-nested-method", "dt_nested", "Holder.method",
                 Replace("            return self\n", "            result = self\n            return result\n")),
        ]
        ''', {"dt_nested": [("        return item * 2\n", "        item = item + 1\n        return item * 2\n"),
                            ("        return [node]\n", "        found = [node]\n        return found\n"),
                            ("            return self\n", "            result = self\n            return result\n")]},
        {"dt-nested-inner": oc.APPLIED, "dt-nested-outer": oc.APPLIED, "dt-nested-method": oc.APPLIED}),
    # Closures whose cells change: a new free variable, and methods that start using super().
    Case("closures", {"dt_closures": """
        def counter(start):
            step = 2

            def bump():
                return start + 1
            return bump


        def make(a, b):
            def get():
                return a
            return get


        class Base:
            def greet(self):
                return "base"


        class Child(Base):
            def greet(self):
                return "child"

            def again(self):
                return "again"
        """}, r'''
        RULES = [
            rule("dt-closure-outer", "dt_closures", "counter", Replace("start + 1", "start + step")),
            rule("dt-closure-inner", "dt_closures", "make.get",
                 Replace("        return a\n", "        c = a + b\n        return c\n")),
            rule("dt-super", "dt_closures", "Child.greet", Replace('"child"', '"child " + super().greet()')),
            rule("dt-super-moved", "dt_closures", "Child.again",
                 Replace('        return "again"\n', "        base = super().greet()\n        return base\n")),
        ]
        ''', {"dt_closures": [("start + 1", "start + step"),
                              ("        return a\n", "        c = a + b\n        return c\n"),
                              ('"child"', '"child " + super().greet()'),
                              ('        return "again"\n', "        base = super().greet()\n        return base\n")]},
        {"dt-closure-outer": oc.APPLIED, "dt-closure-inner": oc.APPLIED, "dt-super": oc.APPLIED,
         "dt-super-moved": oc.APPLIED}),
    Case("generators-async", {"dt_generators": """
        import asyncio


        def items(n):
            for i in range(n):
                yield i


        async def fetch(x):
            await asyncio.sleep(0)
            return x


        async def stream(n):
            for i in range(n):
                yield i


        class Members:
            @staticmethod
            def make(x):
                return x

            @classmethod
            def build(cls, x):
                return cls()

            @property
            def size(self):
                return 1
        """}, r'''
        RULES = [
            rule("dt-generator", "dt_generators", "items",
                 Replace("        yield i\n", "        yield i\n    yield -1\n")),
            rule("dt-async", "dt_generators", "fetch", Replace("    return x\n", "    x = x * 2\n    return x\n")),
            rule("dt-async-generator", "dt_generators", "stream",
                 Replace("yield i", "yield await asyncio.sleep(0, i)")),
            rule("dt-static", "dt_generators", "Members.make",
                 Replace("        return x\n", "        x = [x]\n        return x\n")),
            rule("dt-classmethod", "dt_generators", "Members.build", Replace("cls, x)", "cls, x=None)")),
            rule("dt-property", "dt_generators", "Members.size",
                 Replace("        return 1\n", "        size = 2\n        return size\n")),
        ]
        ''', {"dt_generators": [
            ("    for i in range(n):\n        yield i\n\n\nasync",
             "    for i in range(n):\n        yield i\n    yield -1\n\n\nasync"),
            ("\n    return x\n", "\n    x = x * 2\n    return x\n"),
            ("        yield i\n\n\nclass", "        yield await asyncio.sleep(0, i)\n\n\nclass"),
            ("        return x\n\n    @classmethod", "        x = [x]\n        return x\n\n    @classmethod"),
            ("cls, x)", "cls, x=None)"),
            ("        return 1\n", "        size = 2\n        return size\n")]},
        {"dt-generator": oc.APPLIED, "dt-async": oc.APPLIED, "dt-async-generator": oc.APPLIED, "dt-static": oc.APPLIED,
         "dt-classmethod": oc.APPLIED, "dt-property": oc.APPLIED}),
    # D6: a result that is not exactly the target fails, says why, and takes no other rule down.
    Case("not-the-target", {"dt_results": """
        def load(path):
            return path


        class Reader:
            def read(self):
                return 1

            def close(self):
                return 2

            def size(self):
                return 3


        def keep(x):
            return x
        """}, r'''
        RULES = [
            rule("dt-helper-after", "dt_results", "load",
                 Replace("    return path\n", "    return path\n\n\ndef helper():\n    return 2\n")),
            rule("dt-renamed-text", "dt_results", "Reader.read", Replace("def read(", "def fetch(")),
            rule("dt-renamed-node", "dt_results", "Reader.close", RenameNode("shut")),
            rule("dt-dedented", "dt_results", "Reader.size",
                 Replace("    def size(self):\n        return 3", "def size(self):\n    return 3")),
            rule("dt-still-applied", "dt_results", "keep", Replace("return x", "return x, x")),
        ]
        ''', {"dt_results": [("return x\n", "return x, x\n")]},
        {"dt-helper-after": oc.FAILED, "dt-renamed-text": oc.FAILED, "dt-renamed-node": oc.FAILED,
         "dt-dedented": oc.FAILED, "dt-still-applied": oc.APPLIED},
        {"dt-helper-after": "holds more than the function load: also `def helper`",
         "dt-renamed-text": "renamed Reader.read to fetch", "dt-renamed-node": "renamed Reader.close to shut",
         "dt-dedented": "moved the `def` of Reader.size from column 4 to 0"}),
    # D12: line counts changed inside PEP 695 generic classes and functions, beside other rules.
    Case("generics", {"dt_generics": GENERICS}, r'''
        RULES = [
            rule("dt-generic-method", "dt_generics", "Box.get",
                 Replace("        return self.item\n", "        name = T.__name__\n        return self.item\n")),
            rule("dt-generic-function", "dt_generics", "first",
                 Replace("    return items[0]\n", "    item: T = items[0]\n    return item\n")),
            rule("dt-generic-in-place", "dt_generics", "Pair.key", Replace("self.k", "self.k or None")),
            rule("dt-generic-other", "dt_generics", "dumps", AddExceptTypes(add=("ValueError",), converts_to="Bypass")),
        ]
        ''', {"dt_generics": [("        return self.item\n", "        name = T.__name__\n        return self.item\n"),
                              ("    return items[0]\n", "    item: T = items[0]\n    return item\n"),
                              ("self.k", "self.k or None"),
                              ("except TypeError as e:", "except (TypeError, ValueError) as e:")]},
        {"dt-generic-method": oc.APPLIED, "dt-generic-function": oc.APPLIED, "dt-generic-in-place": oc.APPLIED,
         "dt-generic-other": oc.APPLIED}, python=(3, 12)),
    # The same module, and a change of a generic class's body: the whole module compiles.
    Case("generics-body", {"dt_generics_body": GENERICS}, r'''
        RULES = [
            rule("dt-body-method", "dt_generics_body", "Box.get",
                 Replace("        return self.item\n", "        name = T.__name__\n        return self.item\n")),
            whole("dt-body-class", Change(module="dt_generics_body", scope="Pair", edit=ApplyHunks(hunks=[Hunk(
                before=["        return self.k"],
                after=["        return self.k", "", "    def value(self) -> V:", "        return self.v"])]))),
        ]
        ''', {"dt_generics_body": [
            ("        return self.item\n", "        name = T.__name__\n        return self.item\n"),
            ("        return self.k\n", "        return self.k\n\n    def value(self) -> V:\n"
                                    "        return self.v\n")]},
        {"dt-body-method": oc.APPLIED, "dt-body-class": oc.APPLIED}, python=(3, 12)),
]


def corpus() -> list[Case]:
    """The cases this interpreter can run, each also under `from __future__ import annotations`."""
    cases = [c for c in CASES if sys.version_info >= c.python]
    return cases + [c.with_future_annotations() for c in cases]


def case_params() -> list:
    params = []
    for case in CASES + [c.with_future_annotations() for c in CASES]:
        marks = [pytest.mark.python312] if case.python >= (3, 12) else []
        params.append(pytest.param(case.name, marks=marks, id=case.name))
    return params


def write_modules(root: Path, modules: dict[str, str]) -> None:
    for name, text in modules.items():
        parts = name.split(".")
        path = root.joinpath(*parts[:-1])
        path.mkdir(parents=True, exist_ok=True)
        if text == "" and len(parts) == 1:  # an empty package
            (root / name).mkdir(exist_ok=True)
            (root / name / "__init__.py").write_text("")
            continue
        target = path / f"{parts[-1]}.py"
        if target.parent != root and not (target.parent / "__init__.py").exists():
            (target.parent / "__init__.py").write_text("")
        target.write_text(text)


class Runs:
    """The corpus, run once: astpatch's texts, and what each of the three processes imported."""

    def __init__(self, root: Path) -> None:
        self.cases = {c.name: c for c in corpus()}
        rules, original, plain = root / "rules", root / "original", root / "plain"
        for directory in (rules, original, plain):
            directory.mkdir()
        self.texts: dict[str, str] = {}
        self.outcomes: dict[str, oc.Outcome] = {}
        for case in self.cases.values():
            rule_file = rules / f"case_{case.name.replace('-', '_')}.py"
            rule_file.write_text(case.rules)
            write_modules(original, case.modules)
            write_modules(plain, {m: case.expected(m) for m in case.modules})
            for report in evaluate(load_rule_file(str(rule_file)), Directory(str(original))):
                self.texts[report.module] = "".join(report.after)
                self.outcomes.update({rule.id: o for rule, o in report.outcomes})
        names = ",".join(m for c in self.cases.values() for m in c.modules)
        cache = root / "cache"
        self.plain = probe(root, "plain", plain, names)
        self.cold = probe(root, "astpatch", original, names, str(rules), str(cache))
        self.warm = probe(root, "astpatch", original, names, str(rules), str(cache))


def probe(root: Path, mode: str, directory: Path, names: str, *astpatch_args: str) -> dict:
    script = root / "probe.py"
    script.write_text(PROBE)
    out = root / f"{mode}-{len(list(root.glob('*.json')))}.json"
    done = subprocess.run([sys.executable, str(script), mode, str(directory), names, str(out), *astpatch_args],
                          capture_output=True, text=True, env=clean_env(PYTHONHASHSEED="0"), timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Runs:
    return Runs(tmp_path_factory.mktemp("differential"))


def first_difference(a: object, b: object, where: str = "") -> str | None:
    """Where two shapes first differ (a path into them), for a readable failure."""
    if type(a) is not type(b):
        return f"{where}: {a!r} != {b!r}"
    if isinstance(a, dict):
        for key in sorted(set(a) | set(b)):  # type: ignore[arg-type]
            if key not in a or key not in b:  # type: ignore[operator]
                return f"{where}.{key}: only in {'the first' if key in a else 'the second'}"  # type: ignore[operator]
            found = first_difference(a[key], b[key], f"{where}.{key}")  # type: ignore[index]
            if found:
                return found
        return None
    if isinstance(a, list):
        if len(a) != len(b):  # type: ignore[arg-type]
            return f"{where}: {len(a)} items != {len(b)}: {a!r} != {b!r}"  # type: ignore[arg-type]
        for i, (x, y) in enumerate(zip(a, b)):  # type: ignore[call-overload]
            found = first_difference(x, y, f"{where}[{i}]")
            if found:
                return found
        return None
    return None if a == b else f"{where}: {a!r} != {b!r}"


@pytest.mark.parametrize("name", case_params())
def test_the_patched_text_is_the_declared_change(runs, name):
    """astpatch's text (what `astpatch diff` shows) is the rules' change made with string replacements."""
    case = runs.cases[name]
    for module in case.modules:
        assert runs.texts.get(module, case.modules[module]) == case.expected(module), module
    for rule_id, status in case.statuses.items():
        outcome = runs.outcomes[rule_id]
        assert outcome.status == status, outcome.reason
        assert case.reasons.get(rule_id, "") in outcome.reason


@pytest.mark.parametrize("process", ["cold", "warm"])
@pytest.mark.parametrize("name", case_params())
def test_the_import_is_a_plain_import_of_the_patched_text(runs, name, process):
    """Cold: a fresh process, an empty cache; warm: the next process, every module from the cache."""
    case = runs.cases[name]
    found = getattr(runs, process)
    outcomes = {rule_id: (status, reason, from_cache) for rule_id, _, status, reason, from_cache in found["outcomes"]}
    for rule_id, status in case.statuses.items():
        assert outcomes[rule_id][0] == status, outcomes[rule_id]
        assert case.reasons.get(rule_id, "") in outcomes[rule_id][1]
        assert outcomes[rule_id][2] == (process == "warm"), outcomes[rule_id]
    for module in case.modules:
        ours, theirs = found["modules"][module], runs.plain["modules"][module]
        assert isinstance(theirs, dict), theirs
        difference = first_difference(ours, theirs, module)
        assert difference is None, difference


# The reliability defects (D1, D6, D12) that this comparison covers, each also checked on its own terms.

def shape_of(found: dict, module: str, *names: str) -> dict:
    """A definition's shape in a probe's result: `names` walks module values and class members."""
    shape = found["modules"][module]["values"][names[0]]
    for name in names[1:]:
        shape = shape["members"][name]
    return shape


@pytest.mark.parametrize("process", ["cold", "warm"])
def test_d1_an_edit_of_the_def_line_runs_as_written(runs, process):
    """New defaults, a new parameter with a default, a new keyword-only parameter, a changed and an
    added decorator: the function objects have them, on every CPython (3.10 too, where another edit
    of the module changes its line count)."""
    found = getattr(runs, process)
    assert shape_of(found, "dt_signature", "scale")["defaults"] == ["tuple", ["0"]]
    assert shape_of(found, "dt_signature", "Store", "get")["defaults"] == ["tuple", ["0"]]
    put = shape_of(found, "dt_signature", "Store", "put")
    assert put["kwdefaults"] == ["dict", [["'replace'", "False"], ["'strict'", "True"]]]
    assert ["'strict'", "class builtins.bool"] in put["annotations"][1]
    assert shape_of(found, "dt_signature_moved", "scale")["defaults"] == ["tuple", ["2"]]
    assert shape_of(found, "dt_signature_moved", "Store", "get")["defaults"] == ["tuple", [["tuple", []]]]
    assert shape_of(found, "dt_decorators", "Service", "run")["attributes"] == {"tag": "'new'"}
    assert shape_of(found, "dt_decorators", "Service", "stop")["attributes"] == {"tag": "'added'"}
    wrapper = shape_of(found, "dt_decorators", "plain")
    assert wrapper["qualname"] == "plain" and wrapper["attributes"]["traced"] == "True"
    assert wrapper["attributes"]["__wrapped__"]["code"]["co_name"] == "'plain'"
    assert wrapper["code"]["co_name"] == "'wrapper'"


@pytest.mark.parametrize("process", ["cold", "warm"])
def test_d6_a_result_that_is_not_the_target_fails_and_says_why(runs, process):
    """A result with a helper after the function, one that renames the function (as text or as a
    libcst node) and one that moves its `def` are `failed`, each with its reason, on every CPython;
    the module keeps those functions as upstream wrote them, gains no name, and another rule on it
    is applied."""
    found = getattr(runs, process)
    outcomes = {rule_id: (status, reason) for rule_id, _, status, reason, _ in found["outcomes"]}
    reasons = runs.cases["not-the-target"].reasons
    wrong = {rule_id: outcomes[rule_id] for rule_id, reason in reasons.items()
             if outcomes[rule_id][0] != oc.FAILED or reason not in outcomes[rule_id][1]}
    assert wrong == {}
    assert outcomes["dt-still-applied"][0] == oc.APPLIED
    names = found["modules"]["dt_results"]["names"]
    assert "helper" not in names and "load" in names
    members = shape_of(found, "dt_results", "Reader")["members"]
    assert {"read", "close", "size"} <= set(members) and not {"fetch", "shut"} & set(members)
    assert members["size"]["code"]["co_name"] == "'size'"


@pytest.mark.python312  # type parameters are Python 3.12 syntax
@pytest.mark.parametrize("process", ["cold", "warm"])
def test_d12_line_count_changes_inside_generic_definitions(runs, process):
    """Edits that change the line count inside a generic class's method and a generic function,
    and an in-place edit in another generic class, are applied beside a rule on a plain function,
    and the method reads the class's type parameter."""
    found = getattr(runs, process)
    outcomes = {rule_id: status for rule_id, _, status, _, _ in found["outcomes"]}
    assert [outcomes[r] for r in ("dt-generic-method", "dt-generic-function", "dt-generic-in-place",
                                  "dt-generic-other")] == [oc.APPLIED] * 4
    get = shape_of(found, "dt_generics", "Box", "get")
    assert "'T'" in get["code"]["co_freevars"][1]
    assert get == shape_of(runs.plain, "dt_generics", "Box", "get")


# The wheels tier: real modules read from torch's released wheels, compiled in this process.

def probe_functions() -> dict:
    namespace: dict = {"__name__": "probe"}
    exec(compile(PROBE, "probe", "exec"), namespace)
    return namespace


def compare_compiled(module: str, path: str, text: str, rules: list, versions: dict[str, str | None],
                     expected_text: str, elsewhere: dict | None = None) -> list[str]:
    """Rewrite `text` with and without its upstream code; each result's patched text must be
    `expected_text`, and its code the code `compile()` makes of that text (line tables through the
    text each line shows). Returns the statuses."""
    code_shape = probe_functions()["code_shape"]
    plain = compile(expected_text, path, "exec", dont_inherit=True)
    expected = code_shape(plain, split_lines(expected_text), path)
    statuses = []
    for upstream in (None, compile(text, path, "exec", dont_inherit=True)):
        result = rewrite(module, path, text, rules, versions, upstream=upstream, elsewhere=elsewhere)
        lines = split_lines(text)
        assert "".join(patched_lines(lines, result.spans)) == expected_text
        assert result.code is not None
        ours = code_shape(result.code, linecache_lines(lines, result.spans), path)
        difference = first_difference(ours, expected, module)
        assert difference is None, difference
        statuses = [o.status for o in result.outcomes]
    return statuses


RELEASES = ["2.9.0", "2.9.1", "2.10.0", "2.11.0", "2.12.0", "2.13.0"]


def with_key_returns(text: str) -> str:
    """`text` with torch_key's own two returns passed through key_with_rules, as the key rule declares."""
    start = text.index("\ndef torch_key(")
    end = text.index("\ndef ", start + 1)
    lines = split_lines(text[start:end])
    changed = 0
    for i, line in enumerate(lines):
        value = line.strip()[len("return "):]
        if line.strip().startswith(("return get_code_hash(", "return parutil.")):
            indent = line[: len(line) - len(line.lstrip())]
            lines[i] = f'{indent}return __import__("astpatch").key_with_rules({value}, "torch")\n'
            changed += 1
    assert changed == 2
    return text[:start] + "".join(lines) + text[end:]


@pytest.mark.wheels
@pytest.mark.parametrize("release", RELEASES)
def test_the_shipped_rules_on_codecache_compile_as_the_patched_text(release):
    """The shipped rules on each release's codecache.py: the patched text is the declared change (the
    key's returns; on 2.10, `dumps` as 2.11 ships it), and astpatch's code is `compile()` of it."""
    from test_released_wheels import MODULE_PATH, dumps_source, wheel

    from astpatch._model.rulefiles import builtin_rules_dir
    from astpatch._model.ruleset import load_rules

    rules = load_rules([builtin_rules_dir()], print)
    assert {r.id for r in rules} >= {"torch-fxgraph-cache-key-valueerror", "torch-compile-caches-key-by-rules",
                                     "torch-fxgraph-cache-key-pybind11-runtimeerror"}
    source, version = wheel(release)
    expected = with_key_returns(source)
    if release == "2.10.0":
        expected = expected.replace(dumps_source(source), dumps_source(wheel("2.11.0")[0]))
    module = "torch._inductor.codecache"
    targeted = [r for r in rules if module in r.modules]
    statuses = compare_compiled(module, MODULE_PATH, source, targeted, {"torch": version}, expected)
    assert statuses.count(oc.APPLIED) == (3 if release == "2.10.0" else 1)


@pytest.mark.wheels
@pytest.mark.parametrize("number", [177558, 166458, 167131])
def test_the_whole_change_rules_compile_as_the_patched_text(number, tmp_path):
    """Each real pull request's whole-change rule on its broken release: the patched text is the
    `patch` program's, and astpatch's code for each module is `compile()` of it."""
    from test_released_changes import PULL_REQUESTS, module_name, patch_program, read_wheel

    from astpatch._engine.spanning import outcomes_elsewhere

    (pr,) = [p for p in PULL_REQUESTS if p.number == number]
    rule = pr.rule()
    expected = patch_program(pr, tmp_path)
    paths = {module_name(path): path for path in pr.paths}
    versions = {"torch": pr.broken}
    for module, path in paths.items():
        text = read_wheel(pr.broken, path)
        elsewhere = outcomes_elsewhere(module, [rule], versions,
                                       lambda other: (paths[other], read_wheel(pr.broken, paths[other])))
        statuses = compare_compiled(module, path, text, [rule], versions, expected[path], elsewhere)
        assert statuses == [oc.APPLIED]
