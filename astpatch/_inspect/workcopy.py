"""Work copies for `astpatch edit` and `astpatch commit`: installed modules copied to be edited, and
the difference between them and the edited copy, checked against what the copy was made from.

A work directory holds the copy laid out as in site-packages (`torch/_inductor/codecache.py`) and
a record, `.astpatch-edit.json`: the modules, the distribution and version that installed them,
the SHA-256 of each installed file, and the rule the copy started from, if any. Commit reads the
installed source again and refuses when a file's hash differs (an upgrade or a reinstall since the
copy was made: the user edited other text than is installed now). Otherwise the unified diff from
the installed source to the edited copy is the change, which the planner of `astpatch new
--from-diff` makes into one rule; `verify` then checks that the rule gives the copy's text.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from importlib.util import decode_source

from .._base import __version__
from .._base.lines import split_lines
from .._base.metadata import installed_version
from .._base.modulefiles import SourceNotFound, locate
from .diffs import module_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from .._model.rule import Rule

RECORD = ".astpatch-edit.json"
_FORMAT = 1


class WorkCopyError(Exception):
    """A copy cannot be made or committed as asked; the message says what and what to do."""


class SourceChanged(WorkCopyError):
    """The installed source is not what the copy was made from."""


def default_rules_dir(configured: Sequence[str] = ()) -> str:
    """Where `astpatch commit` writes rule files when not told: the first directory among the rule
    paths in force (`configured`: ASTPATCH_RULES, or the project's `[tool.astpatch] rules`), so the
    new rule is one the project loads; without one, `astpatch_rules` in the current directory. The
    one place this default is decided."""
    for path in configured:
        if os.path.isdir(path) or not path.endswith(".py"):
            return path
    return "astpatch_rules"


def release_series(distribution: str, version: str) -> str:
    """The gate of the release series of `version`: its first two release numbers, as gates compare
    them (`2.10.0`, `2.10.1`, `2.10.0a0+git1234` give `>=2.10,<2.11`; a one-number `3`, `>=3,<4`)."""
    from packaging.version import InvalidVersion, Version

    try:
        release = Version(version).release
    except InvalidVersion:
        raise WorkCopyError(f"{distribution} {version} is not a PEP 440 version, so it has no release series; "
                            "give the gate with --gate") from None
    if len(release) == 1:
        return f"{distribution}>={release[0]},<{release[0] + 1}"
    return f"{distribution}>={release[0]}.{release[1]},<{release[0]}.{release[1] + 1}"


def copy_path(module: str, path: str) -> str:
    """Where a module's file goes in the copy: `a/b.py`, or `a/b/__init__.py` for a package."""
    base = module.replace(".", "/")
    return f"{base}/__init__.py" if os.path.basename(path) == "__init__.py" else f"{base}.py"


def files_of(name: str) -> list[tuple[str, str]]:
    """(module, installed file) for a module name (a package: every module under it), else for a
    distribution's name (every module it installs)."""
    try:
        path = locate(name)
    except SourceNotFound as missing:
        found = _distribution_files(name)
        if found is None:
            raise WorkCopyError(f"{name} is neither an installed module ({missing}) nor an installed distribution")
        if not found:
            raise WorkCopyError(f"the distribution {name} installs no Python modules")
        return found
    if os.path.basename(path) != "__init__.py":
        return [(name, path)]
    top = os.path.dirname(path)
    found = []
    for directory, subdirectories, names in os.walk(top):
        subdirectories[:] = sorted(d for d in subdirectories if d.isidentifier())
        relative = os.path.relpath(directory, top)
        prefix = name if relative == "." else ".".join([name, *relative.split(os.sep)])
        for file in sorted(names):
            if file.endswith(".py") and file[:-3].isidentifier():
                found.append((prefix if file == "__init__.py" else f"{prefix}.{file[:-3]}", os.path.join(directory, file)))
    return found


def _distribution_files(name: str) -> list[tuple[str, str]] | None:
    from importlib import metadata

    try:
        files = metadata.distribution(name).files or []
    except metadata.PackageNotFoundError:
        return None
    found = []
    for file in files:
        relative = str(file).replace(os.sep, "/")
        module = module_name(relative) if not relative.startswith("../") else None
        if module is not None and os.path.isfile(str(file.locate())):
            found.append((module, os.path.abspath(str(file.locate()))))
    return found


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make(directory: str | None, force: bool, files: list[tuple[str, str]], texts: dict[str, str], *,
         distribution: str | None, version: str | None, rule: Rule | None = None) -> str:
    """Copy `files` ((module, installed path), `texts` replacing a module's text) into a work
    directory (None: a new temporary one) with its record; returns the directory."""
    if directory is None:
        directory = tempfile.mkdtemp(prefix="astpatch-edit-")
    elif os.path.exists(directory) and not os.path.isdir(directory):
        raise WorkCopyError(f"{directory} is not a directory")
    elif os.path.isdir(directory) and os.listdir(directory) and not force:
        raise WorkCopyError(f"{directory} is not empty; choose another --dir, or give --force to write the copy "
                            "over the files of the same names there (other files are left alone)")
    entries = []
    for module, path in files:
        relative = copy_path(module, path)
        if module_name(relative) != module:
            raise WorkCopyError(f"{module}: a module whose package is named src or lib cannot be edited this way")
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as error:
            raise WorkCopyError(f"cannot read {path}: {error.strerror or error}") from None
        given = texts[module].encode("utf-8") if module in texts else data
        target = os.path.join(directory, *relative.split("/"))
        try:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as f:
                f.write(given)
        except OSError as error:
            raise WorkCopyError(f"cannot write {target}: {error.strerror or error}") from None
        entries.append({"module": module, "copy": relative, "installed": path, "sha256": _digest(data)})
    record = {"format": _FORMAT, "astpatch": __version__, "distribution": distribution, "version": version,
              "rule": {"id": rule.id, "file": rule.origin} if rule is not None else None, "files": entries}
    with open(os.path.join(directory, RECORD), "w", encoding="utf-8") as f:
        json.dump(record, f, indent=2)
    return os.path.abspath(directory)


class Edited:
    """A work directory at commit time: its record, each changed module (module, installed path,
    installed text, edited text), their unified diff, and notes on files left out."""

    def __init__(self, directory: str, record: dict) -> None:
        self.directory = directory
        self.record = record
        self.changed: list[tuple[str, str, str, str]] = []
        self.diff = ""
        self.notes: list[str] = []

    @property
    def written_for(self) -> str | None:
        """`torch 2.10.0`: the distribution and version the copy was made from."""
        distribution, version = self.record.get("distribution"), self.record.get("version")
        return f"{distribution} {version}" if distribution and version else None


def load_record(directory: str) -> dict:
    path = os.path.join(directory, RECORD)
    try:
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
    except FileNotFoundError:
        raise WorkCopyError(f"{directory} is not a work directory of `astpatch edit` (it has no {RECORD})") from None
    except (OSError, ValueError) as error:
        raise WorkCopyError(f"cannot read {path}: {error}") from None
    if not isinstance(record, dict) or record.get("format") != _FORMAT or not isinstance(record.get("files"), list):
        raise WorkCopyError(f"{path} is not a record this astpatch ({__version__}) can read; make a new copy")
    return record


def edited(directory: str) -> Edited:
    """What changed in the work directory since `make`; SourceChanged when the installed source is
    not what the copy was made from."""
    work = Edited(directory, load_record(directory))
    made_from = work.written_for or "the installed source"
    recorded = set()
    diffs = []
    for entry in work.record["files"]:
        module, relative = entry["module"], entry["copy"]
        recorded.add(os.path.normpath(os.path.join(directory, *relative.split("/"))))
        try:
            path = locate(module)
            with open(path, "rb") as f:
                data = f.read()
        except (SourceNotFound, OSError) as error:
            raise SourceChanged(f"{module} cannot be read any more ({error}); the copy in {directory} was made "
                                f"from {made_from}") from None
        if os.path.realpath(path) != os.path.realpath(entry["installed"]) or _digest(data) != entry["sha256"]:
            distribution = work.record.get("distribution")
            now = installed_version(distribution) if distribution else None
            where = f", now {distribution} {now}" if now else ""
            raise SourceChanged(f"the installed source of {module} ({path}) changed since the copy in {directory} was "
                                f"made from {made_from}{where}: redo the change on a new copy (astpatch edit); "
                                "the old copy is left as it is")
        copy = os.path.join(directory, *relative.split("/"))
        try:
            with open(copy, "rb") as f:
                after = decode_source(f.read())
        except OSError as error:
            raise WorkCopyError(f"cannot read the copy of {module} ({copy}): {error.strerror or error}; "
                                "a rule changes modules, it cannot delete one") from None
        except (SyntaxError, UnicodeDecodeError, LookupError) as error:
            raise WorkCopyError(f"the copy of {module} ({copy}) cannot be decoded as Python source: {error}") from None
        before = decode_source(data)
        if before != after:
            work.changed.append((module, path, before, after))
            # Without context: each hunk is just the changed lines, which the planner places by the
            # header's line numbers in the very text the diff was made from, then gives the context
            # that makes it unique in its scope; so each function, class or top level is its own part.
            diffs.append(unified(split_lines(before), split_lines(after), f"a/{relative}", f"b/{relative}", context=0))
    for folder, subdirectories, names in os.walk(directory):
        subdirectories[:] = sorted(d for d in subdirectories if d != "__pycache__")
        for name in sorted(names):
            path = os.path.normpath(os.path.join(folder, name))
            if name.endswith(".py") and path not in recorded and not name.startswith("."):
                work.notes.append(f"{os.path.relpath(path, directory)} is not a copy of an installed module, so it is "
                                  "left out: a rule changes modules that exist")
    if not work.changed:
        raise WorkCopyError(f"nothing to commit: every module in {directory} is as installed; edit the copy first")
    work.diff = "".join(diffs)
    return work


def unified(before: list[str], after: list[str], old: str, new: str, context: int = 3) -> str:
    """A unified diff of two texts' lines, with the `\\ No newline at end of file` marker `patch` reads."""
    import difflib

    lines = difflib.unified_diff(before, after, old, new, n=context)
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)


def verify(rule: Rule, work: Edited) -> tuple[list[str], list[str]]:
    """Why `rule`, applied to the installed source, does not give the edited copy (nothing: it does),
    and the diff of each module it changes, as `astpatch diff` shows it."""
    from .._base import outcomes as oc
    from .evaluate import evaluate
    from .sources import Installed

    wanted = {module: after for module, _, _, after in work.changed}
    problems, shown = [], []
    reports = evaluate([rule], Installed())
    for module in wanted.keys() - {report.module for report in reports}:
        problems.append(f"{module}: the copy changes it, but the rule does not")
    for report in reports:
        for _, outcome in report.outcomes:
            if outcome.status != oc.APPLIED:
                problems.append(f"{report.module}: the rule is {outcome.status} on the installed source: {outcome.reason}")
        if report.path is not None and report.before != report.after:
            shown.append(unified(report.before, report.after, f"{report.path} (upstream)", f"{report.path} (astpatch)"))
        got = split_lines("".join(report.after))
        expected = split_lines(wanted.get(report.module, "".join(report.before)))
        if [line.rstrip() for line in got] != [line.rstrip() for line in expected]:
            line = next((i for i, (a, b) in enumerate(zip(got, expected)) if a.rstrip() != b.rstrip()),
                        min(len(got), len(expected)))
            problems.append(f"{report.module}: the rule's result differs from the copy from line {line + 1} on "
                            f"(the rule gives {got[line] if line < len(got) else '<end>'!r}, the copy has "
                            f"{expected[line] if line < len(expected) else '<end>'!r})")
    return problems, shown
