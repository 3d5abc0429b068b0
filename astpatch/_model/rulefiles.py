"""Loading rules from rule files.

A rule file is a Python file that builds its rules from `astpatch`'s declarations and lists them
in `RULES` (or a single `RULE`). It is executed, not imported: it does not become a module, and
its directory does not have to be a package. The rules that ship with astpatch are such files.

Executing a file runs its code, so a rule file, a rule directory and a rule file's bytecode get the
checks the cache gets (`astpatch._base.evidence`), with root accepted as an owner too (a system-wide
rule directory): owned by this user or root, not writable by group or others, and neither in a
directory nor behind a symbolic link that another user could change. What fails them is not
executed. The shipped rules are not checked: they are part of the astpatch package, whose own modules
Python has already executed from the same directory tree, so they are exactly as trusted as it is.

The rule-file index (`astpatch._model.ruleindex`) keeps a file's rules without executing it again
only when they are a function of its text: executing it, `load_rule_file` can say what else they
may depend on (`depends`).
"""

import os
import stat

from .._base.evidence import open_to_others, untrusted, untrusted_links

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from .rule import Rule

# What a user can do about a rule file that is not trusted, whoever owns it.
_KEEP = "keep rule files, and the directories that hold them, owned by you or root and writable only by their owner"


class RuleFileError(Exception):
    """A rule file could not be loaded; the message names the file and the problem."""


def builtin_rules_dir() -> str:
    """The rules that ship with astpatch: `astpatch/rules` when installed, `rules/` in a checkout."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    installed = os.path.join(here, "rules")
    if os.path.isdir(installed):
        return installed
    return os.path.join(os.path.dirname(here), "rules")


def untrusted_rule_path(path: str) -> str | None:
    """Why the rule file or directory at `path` must not be executed, or None (see the module's docstring)."""
    problem = untrusted_links(path)
    if problem:
        return problem
    try:
        st = os.stat(path)
    except OSError as error:
        return f"it cannot be examined ({error.strerror or error})"
    problem = untrusted(st, root_too=True)
    if problem or stat.S_ISDIR(st.st_mode):
        return problem  # a directory's files are checked one by one, with it as their directory
    problem = open_to_others(os.path.dirname(os.path.realpath(path)), st.st_uid)
    return f"it is in a directory that another user can change: {problem}" if problem else None


def rule_files(path: str, check: bool = True, listdir: "Callable[[str], list[str]]" = os.listdir) -> list[str]:
    """The rule files a path names: itself, or the `*.py` files of a directory (not `_*.py`), whose
    names `listdir` gives; with `check`, RuleFileError for a directory that is not trusted (see
    `untrusted_rule_path`) or cannot be listed."""
    if not os.path.isdir(path):
        return [path]
    problem = untrusted_rule_path(path) if check else None
    if problem:
        raise RuleFileError(f"rule directory {path} is not loaded because {problem}; {_KEEP}")
    try:
        names = sorted(listdir(path))
    except OSError as error:
        raise RuleFileError(f"cannot read rule directory {path}: {error.strerror or error}") from None
    prefix = os.path.join(path, "")  # then one concatenation a file: there may be thousands
    return [prefix + n for n in names if n.endswith(".py") and not n.startswith("_")]


_loader_class: type | None = None


def _loader(path: str, check: bool):  # type: ignore[no-untyped-def]
    """A loader for the rule file `path`: its class is made at the first rule file executed, so that
    finding rule files (all that install() does with a current index) imports no importlib."""
    global _loader_class
    if _loader_class is None:
        from importlib.machinery import SourceFileLoader

        class RuleFileLoader(SourceFileLoader):
            """Reads a rule file's `.pyc` when it is current (pip writes one for the shipped rules at
            install time: a first compile() in a process costs more than install() may), and never
            writes one: a user's rule directory is theirs, not a place for astpatch's `__pycache__`.
            With `check`, a `.pyc` that fails the rule files' checks is not read: the source is compiled."""

            def __init__(self, fullname: str, path: str, check: bool) -> None:
                super().__init__(fullname, path)
                self.check = check

            def get_data(self, path: str) -> bytes:
                if self.check and path != self.path:
                    problem = untrusted_rule_path(path)
                    if problem:
                        from .._base.messages import trace

                        trace(f"not reading the bytecode {path} of rule file {self.path}: {problem}")
                        raise OSError(problem)  # get_code() compiles the source instead
                return super().get_data(path)

            def set_data(self, *args: object, **kwargs: object) -> None:
                pass

        _loader_class = RuleFileLoader
    return _loader_class("astpatch.rulefile", path, check)


def examine_rule_file(path: str, check: bool = True) -> None:
    """RuleFileError when `path` is not a file, or (with `check`) not one to execute (see `untrusted_rule_path`)."""
    if not os.path.isfile(path):
        raise RuleFileError(f"cannot read rule file {path}: it is not a file")
    problem = untrusted_rule_path(path) if check else None
    if problem:
        raise RuleFileError(f"rule file {path} is not loaded because {problem}; {_KEEP}")


# What a rule file's rules may depend on besides its own text: any module but astpatch, and these
# builtins, which read files or the terminal, or run code that is not in the file.
_OUTSIDE_BUILTINS = frozenset(("open", "exec", "eval", "compile", "input", "breakpoint", "__import__", "__builtins__"))


def _watched(namespace: dict, depends: list[str]) -> "Callable[[], None]":
    """Give `namespace` builtins whose `__import__` notes in `depends` each module imported other than
    astpatch's; the returned function stops the noting (a function of the file may import later)."""
    import builtins

    original = builtins.__import__
    watching = [True]

    def noting(name: str, globals: object = None, locals: object = None, fromlist: object = (), level: int = 0):  # type: ignore[no-untyped-def]
        if watching[0] and (level or name.partition(".")[0] != "astpatch"):
            depends.append("." * level + name)
        return original(name, globals, locals, fromlist, level)  # type: ignore[arg-type]

    namespace["__builtins__"] = {**builtins.__dict__, "__import__": noting}
    return lambda: watching.__setitem__(0, False)


def _outside_names(code: object) -> list[str]:
    """The builtins of `_OUTSIDE_BUILTINS` that `code`, or a function or class in it, names."""
    found: set[str] = set()
    pending = [code]
    while pending:
        current = pending.pop()
        found.update(_OUTSIDE_BUILTINS.intersection(current.co_names))  # type: ignore[attr-defined]
        pending.extend(c for c in current.co_consts if isinstance(c, type(code)))  # type: ignore[attr-defined]
    return sorted(found)


def load_rule_file(path: str, check: bool = True, depends: list[str] | None = None) -> list["Rule"]:
    """The rules a rule file declares; RuleFileError names the file and the problem. With `check`, a
    file that is not trusted (see `untrusted_rule_path`) is not executed. With `depends`, the file's
    rules are examined for what they may depend on besides its text: the modules it imports other
    than astpatch, and the builtins that read or run other code (`open`, `exec`...) that it names,
    go into `depends`; empty, the rules are a function of the file's text (and astpatch's)."""
    from .rule import Rule

    examine_rule_file(path, check)
    namespace = {"__name__": "astpatch.rulefile", "__file__": path}
    try:
        code = _loader(path, check).get_code("astpatch.rulefile")
        assert code is not None
    except OSError as error:
        raise RuleFileError(f"cannot read rule file {path}: {error.strerror or error}") from None
    except SyntaxError as error:
        raise RuleFileError(f"rule file {path} failed to load: SyntaxError: {error}") from None
    stop = None
    if depends is not None:
        depends.extend(_outside_names(code))
        stop = _watched(namespace, depends)
    try:
        exec(code, namespace)
    except SystemExit as error:  # sys.exit() in a rule file ends that file, not the program
        raise RuleFileError(f"rule file {path} failed to load: SystemExit: {error.code!r} (a rule file must not "
                            "exit the program)") from None
    except Exception as error:  # KeyboardInterrupt is the user's: it reaches the program
        raise RuleFileError(f"rule file {path} failed to load: {type(error).__name__}: {error}") from None
    finally:
        if stop is not None:
            stop()
    rules: object
    if "RULES" in namespace:
        rules = namespace["RULES"]
        if not isinstance(rules, (list, tuple)):
            raise RuleFileError(f"rule file {path}: RULES must be a list of astpatch.Rule")
    elif "RULE" in namespace:
        rules = [namespace["RULE"]]
    else:
        raise RuleFileError(f"rule file {path} defines neither RULES nor RULE")
    checked: list[Rule] = []
    for rule in rules:
        if not isinstance(rule, Rule):
            raise RuleFileError(f"rule file {path}: {rule!r} is not an astpatch.Rule")
        rule.origin = path
        checked.append(rule)
    return checked
