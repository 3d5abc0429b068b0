"""coverage.py plugin: measure and report the text that runs in modules astpatch patched.

Enable it in coverage's configuration (`[run] plugins = astpatch.coverage`, or `plugins =
["astpatch.coverage"]` in `[tool.coverage.run]`) for `coverage run` and the reports alike. Without
it coverage parses the file on disk: lines a patch removed are reported missing, and the new lines,
numbered past the end of the file (`astpatch._base.lines.Span`), are dropped (every other line, a
changed function's unchanged ones included, runs at its line in the file and counts right). It
needs coverage's C tracer (`core = "ctrace"`, the default before Python 3.14): no other core runs
file tracers.

Which files: those whose patched code runs in this process, in `finder.SHOWN`, which
`show_patched_text` fills as the text is shown, before the module's code runs.
coverage offers a file when it first traces code of it (the module's execution), so the entry is
there; every other file stays coverage's own, for one dict lookup per file. A module patched on
its live functions after coverage traced it (imported before `install()`) stays coverage's.

What ran: the tracer takes the module's code object from its first frame (`line_number_range` is
handed every frame; line numbers are already the shown ones) and writes a record beside the data
file (`<data file>-astpatch/`): the file's hash, the spans, the lines of that code. A report runs
in a process that never imports the module (after `coverage combine` too) and rebuilds the rest
from the file. A file with no record (path remapped by `[paths]`, records deleted, or its module
imported before coverage started), or changed since, is reported by coverage itself, as upstream's
text. The last process to measure a file writes its record: a data file's runs must apply the
same rules.

The reporter: `source()` is the text `linecache` holds (in-place changes in the file, the lines of
the other changes past its end after their note). `lines()` is coverage's own rule on the code that
ran: the line of every instruction of every code object, except a nested code's prologue
(`RESUME`...) at its first line, which the parent counts where it runs the `def`; each mapped to
its statement's first line, less docstrings and exclusions. Those, regions and tokens come from
coverage's parser on the patched text (all spans in place, renumbered as shown) and, on the old
lines of a moved span, on upstream's text (no code runs there, but for the `def` of a function
whose edit reflowed its header: upstream's code runs it there when only the function was
recompiled): untouched code reports as without the plugin. Branch coverage (arcs) is not reported
for these files; their lines are.
"""

from __future__ import annotations

import hashlib
import json
import os
import types
from collections.abc import Callable, Iterable
from typing import Any

from coverage import CoveragePlugin, FileReporter, FileTracer
from coverage.files import canonical_filename
from coverage.plugin import CodeRegion

from ._base.lines import Span, linecache_lines, patched_lines, split_lines
from ._hook.finder import SHOWN

RECORD_FORMAT = 1
_PROLOGUE = ("RESUME", "MAKE_CELL", "COPY_FREE_VARS", "RETURN_GENERATOR", "POP_TOP", "NOP", "CACHE", "GEN_START")


def coverage_init(reg: Any, options: dict[str, Any]) -> None:
    """coverage's entry point: the plugin, and a configurer that tells it two settings."""
    plugin = AstpatchCoverage()
    reg.add_file_tracer(plugin)
    reg.add_configurer(_Settings(plugin))


def code_lines(module: types.CodeType) -> set[int]:
    """The lines of the instructions of `module` and of every code object in it (as coverage's
    parser reads a compile), less each nested code's prologue at its first line."""
    import opcode

    prologue = {opcode.opmap[name] for name in _PROLOGUE if name in opcode.opmap}
    found: set[int] = set()
    stack = [module]
    while stack:
        code = stack.pop()
        stack.extend(c for c in code.co_consts if isinstance(c, types.CodeType) and c.co_name != "__annotate__")
        raw = code.co_code
        for start, end, line in code.co_lines():
            if line and not (code is not module and line == code.co_firstlineno
                             and all(op in prologue for op in raw[start:end:2])):
                found.add(line)
    return found


def shown_numbers(count: int, spans: list[Span]) -> list[int]:
    """The shown line of each line of the patched text (index 0 unused), as `linecache_lines` lays
    out a file of `count` lines."""
    number = [0]
    position, shown = 1, 1  # the next line of the file, and where it is shown
    for span in spans:
        number.extend(range(shown, shown + span.start - position))
        shown += span.start - position
        if span.moved_to:
            number.extend(range(span.moved_to, span.moved_to + len(span.lines)))
            shown += span.end - span.start + 1
        else:
            number.extend(range(shown, shown + len(span.lines)))
            shown += len(span.lines)
        position = span.end + 1
    number.extend(range(shown, shown + count - position + 1))
    return number


class Record:
    """What a report needs of one measured file: its source, the spans, the lines of its code."""

    def __init__(self, path: str, source: bytes | None, digest: str, spans: Iterable[Iterable[Any]],
                 lines: list[int] | None, in_place: bool = False) -> None:
        self.path = path
        self.source = source  # None when read back: the report reads the file
        self.digest = digest
        self.spans = [tuple(s) for s in spans]
        self.lines = lines  # None until the module's first frame was seen
        self.in_place = in_place  # the code was compiled from the patched text as is

    def as_json(self) -> str:
        return json.dumps({"format": RECORD_FORMAT, "path": self.path, "sha256": self.digest,
                           "spans": self.spans, "lines": self.lines, "in_place": self.in_place})


class AstpatchCoverage(CoveragePlugin):
    """Claims the files astpatch patched in this process; reports them as the text that ran."""

    def __init__(self) -> None:
        self.records_dir: str | None = None
        self.exclude: str | None = None
        self._records: dict[str, Record] = {}  # by canonical path: measured in this process
        self._patched: dict[str, str] = {}  # canonical path -> its key in SHOWN

    def file_tracer(self, filename: str) -> FileTracer | None:
        if len(self._patched) != len(SHOWN):
            self._patched.update((canonical_filename(path), path) for path in SHOWN.keys() - set(self._patched.values()))
        found = self._patched.get(filename)
        if found is None:
            return None
        source, spans = SHOWN[found]
        record = Record(filename, source, hashlib.sha256(source).hexdigest(), spans, None)
        self._records[filename] = record
        return _Tracer(self, record)

    def file_reporter(self, filename: str) -> FileReporter | str:
        path = canonical_filename(filename)
        record = self._records.get(path) or self._load(path)
        if record is None or record.lines is None:  # not traced from the module's execution
            return "python"
        source = record.source
        if source is None:
            try:
                with open(record.path, "rb") as f:
                    source = f.read()
            except OSError:
                return "python"
            if hashlib.sha256(source).hexdigest() != record.digest:
                return "python"  # changed since it was measured: the spans no longer fit
        return PatchedFileReporter(filename, source, record, self.exclude)

    def sys_info(self) -> list[tuple[str, Any]]:
        return [("records", self.records_dir or "-none-"), ("patched files measured", sorted(self._records))]

    def save(self, record: Record) -> None:
        """Write `record` beside the data file for the reports (atomically: parallel runs share it)."""
        if self.records_dir is None:
            return
        os.makedirs(self.records_dir, exist_ok=True)
        target = self._record_path(record.path)
        temporary = f"{target}.{os.getpid()}.tmp"
        with open(temporary, "w", encoding="utf-8") as f:
            f.write(record.as_json())
        os.replace(temporary, target)

    def _record_path(self, path: str) -> str:
        return os.path.join(self.records_dir or "", hashlib.sha256(path.encode()).hexdigest()[:32] + ".json")

    def _load(self, path: str) -> Record | None:
        if self.records_dir is None:
            return None
        try:
            with open(self._record_path(path), encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("format") != RECORD_FORMAT or data.get("path") != path:
            return None
        return Record(path, None, data["sha256"], data["spans"], data["lines"], data["in_place"])


class _Settings(CoveragePlugin):
    """Tells the plugin where the data file is and what to exclude (it changes no setting)."""

    def __init__(self, plugin: AstpatchCoverage) -> None:
        self._plugin = plugin

    def configure(self, config: Any) -> None:
        data_file = config.get_option("run:data_file")
        self._plugin.records_dir = os.path.abspath(data_file) + "-astpatch" if data_file else None
        exclude = list(config.get_option("report:exclude_lines") or ())
        self._plugin.exclude = "|".join(f"(?:{r})" for r in exclude) if exclude else None


class _Tracer(FileTracer):
    """Records the line numbers as they are (the shown ones); keeps the lines of the module's code."""

    def __init__(self, plugin: AstpatchCoverage, record: Record) -> None:
        self._plugin = plugin
        self._record = record
        self._waiting = True

    def source_filename(self) -> str:
        return self._record.path

    def line_number_range(self, frame: types.FrameType) -> tuple[int, int]:
        if self._waiting and frame.f_code.co_name == "<module>":
            self._waiting = False
            spec = frame.f_globals.get("__spec__")
            # Another import hook's loader compiled the patched text itself: numbered as that text.
            self._record.in_place = getattr(getattr(spec, "loader", None), "_inner", None) is not None
            self._record.lines = sorted(code_lines(frame.f_code))
            self._plugin.save(self._record)
        line = frame.f_lineno
        return (line, line) if line is not None else (-1, -1)


class PatchedFileReporter(FileReporter):
    """One patched file as it ran: its shown text and the statements of its code."""

    def __init__(self, filename: str, source: bytes, record: Record, exclude: str | None) -> None:
        super().__init__(filename)
        from importlib.util import decode_source

        self._lines = split_lines(decode_source(source))
        self._code = record.lines or []
        self._exclude = exclude
        self._spans = [Span.from_tuple(s) for s in record.spans]
        if record.in_place:
            for span in self._spans:
                span.moved_to = 0
        self._facts: tuple[dict[int, int], set[int], set[int], str, list[int]] | None = None

    def _analyse(self) -> tuple[dict[int, int], set[int], set[int], str, list[int]]:
        """First lines of statements, excluded lines, statements (all shown numbers); the patched
        text and its shown numbers."""
        if self._facts is None:
            from coverage.parser import PythonParser

            patched = "".join(patched_lines(self._lines, self._spans))
            number = shown_numbers(len(self._lines), self._spans)
            owners = [(PythonParser(text=patched, exclude=self._exclude), dict(enumerate(number)))]
            old = {n: n for s in self._spans if s.moved_to for n in range(s.start, s.end + 1)}
            if old:
                owners.append((PythonParser(text="".join(self._lines), exclude=self._exclude), old))
            first: dict[int, int] = {}
            excluded: set[int] = set()
            docstrings: set[int] = set()
            for parser, shown in owners:
                parser.parse_source()
                first.update((shown[a], shown[b]) for a, b in parser.multiline_map.items() if a in shown and b in shown)
                excluded.update(shown[n] for n in parser.excluded if n in shown)
                docstrings.update(shown[n] for n in parser.raw_docstrings if n in shown)
            code = self._code if owners[0][0].raw_statements else []  # none when coverage finds the text empty
            ignore = excluded | docstrings
            statements = {first.get(n, n) for n in code if n not in ignore} - ignore
            self._facts = (first, excluded, statements, patched, number)
        return self._facts

    def _shown(self) -> list[str]:  # (a padding line of linecache's is "")
        return [line or "\n" for line in linecache_lines(self._lines, self._spans)]

    def source(self) -> str:
        return "".join(self._shown())

    def lines(self) -> set[int]:
        return set(self._analyse()[2])

    def excluded_lines(self) -> set[int]:
        return set(self._analyse()[1])

    def translate_lines(self, lines: Iterable[int]) -> set[int]:
        first = self._analyse()[0]
        return {first.get(n, n) for n in lines}

    def source_token_lines(self) -> Iterable[list[tuple[str, str]]]:
        from coverage.phystokens import source_token_lines

        shown = self._shown()
        start = len(patched_lines(self._lines, [s for s in self._spans if not s.moved_to]))
        pieces = [shown[:start]]
        for span in sorted((s for s in self._spans if s.moved_to), key=lambda s: s.moved_to):
            end = span.moved_to - 1 + len(span.lines)
            pieces.append(shown[start:end])
            start = end
        for piece in pieces:  # tokenized apart: the moved lines keep their indentation
            yield from _tokens(piece, source_token_lines)

    def code_regions(self) -> Iterable[CodeRegion]:
        from coverage.regions import code_regions

        _, _, _, patched, number = self._analyse()
        return [CodeRegion(r.kind, r.name, number[r.start], {number[n] for n in r.lines if n < len(number)})
                for r in code_regions(patched)]

    def code_region_kinds(self) -> Iterable[tuple[str, str]]:
        return [("function", "functions"), ("class", "classes")]


def _tokens(piece: list[str], tokenize: Callable[[str], Iterable[list[tuple[str, str]]]]) -> list[list[tuple[str, str]]]:
    """coverage's tokens of these lines, a row a line: an indented block's inside an `if`, else plain text."""
    for prefix in ([], ["if 1:\n"]):
        try:
            rows = list(tokenize("".join(prefix + piece)))[len(prefix):]
        except Exception:
            continue
        return (rows + [[] for _ in piece])[: len(piece)]
    return [[("txt", line.rstrip("\n"))] for line in piece]
