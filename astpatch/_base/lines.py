"""Lines of source text: spans that record a rewrite's changes, and blocks found by content.

Kept apart from the rewrite engine, and loaded with the finder by `install()`, so that the patched
text of a cache hit is given to `linecache` without importing anything (when the program uses
`linecache`: see `astpatch._hook.finder.show_patched_text`).
"""

import _thread


class Span:
    """Lines `start`..`end` (1-based, inclusive) of the original text, replaced by `lines`.

    `moved_to` is 0 when the new lines take the place of the old ones (a span that keeps the
    line count). A span that adds or removes lines would shift every line after it, so its new
    lines are compiled from line `moved_to` on, past the end of the file, and tracebacks find
    their text there (see `linecache_lines`); every line of the file keeps its number, and what
    the file says at `start`..`end` is still what is there. Spans are as small as a line diff
    makes them (a function's edit too, once it changes the line count), so only the lines an
    edit added or replaced by a different count are numbered past the end.
    """

    __slots__ = ("start", "end", "lines", "moved_to", "function", "in_classes", "owner")

    def __init__(self, start: int, end: int, lines: list[str], moved_to: int = 0, *, function: bool = False,
                 in_classes: bool = False, owner: int = 0) -> None:
        self.start = start
        self.end = end  # start - 1 for lines inserted before `start`
        self.lines = lines
        self.moved_to = moved_to
        # While rewriting only (not cached): `function`, the span is (part of) an edit of a function
        # that leaves its `def` statement alone; `in_classes`, every scope enclosing that function is
        # a class, so it can be compiled on its own; `owner`, the function's first line (0: none).
        self.function = function
        self.in_classes = in_classes
        self.owner = owner

    @property
    def line_delta(self) -> int:
        return len(self.lines) - (self.end - self.start + 1)

    def to_tuple(self) -> tuple[int, int, tuple[str, ...], int]:
        return (self.start, self.end, tuple(self.lines), self.moved_to)

    @classmethod
    def from_tuple(cls, data: tuple) -> "Span":
        return cls(data[0], data[1], list(data[2]), data[3])


MOVED_NOTE = "# astpatch: lines {start}-{end} of this file, as patched\n"
INSERTED_NOTE = "# astpatch: inserted after line {end} of this file\n"


def split_lines(text: str) -> list[str]:
    """Lines with their endings, for text decoded with universal newlines (only `\\n` ends a line)."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def find_block(lines: list[str], block: list[str] | tuple[str, ...]) -> list[int]:
    """Where `block` occurs in `lines`, as 0-based starts (trailing whitespace and line endings ignored)."""
    if not block:
        return []
    wanted = [b.rstrip() for b in block]
    stripped = [line.rstrip() for line in lines]
    n = len(wanted)
    first = wanted[0]
    return [i for i in range(len(stripped) - n + 1) if stripped[i] == first and stripped[i : i + n] == wanted]


def patched_lines(lines: list[str], spans: list[Span]) -> list[str]:
    """`lines` with each span (sorted by start, not overlapping) replaced in place: the patched source."""
    out: list[str] = []
    position = 0
    for span in spans:
        out.extend(lines[position : span.start - 1])
        out.extend(span.lines)
        position = span.end
    out.extend(lines[position:])
    return out


def linecache_lines(lines: list[str], spans: list[Span]) -> list[str]:
    """The text that matches the executed code line for line: moved spans go after the end."""
    out = patched_lines(lines, [s for s in spans if not s.moved_to])
    for span in spans:
        if span.moved_to:
            if out and not out[-1].endswith("\n"):
                out[-1] += "\n"
            out.append("\n")
            out.extend([""] * (span.moved_to - 2 - len(out)))
            note = MOVED_NOTE if span.end >= span.start else INSERTED_NOTE
            out.append(note.format(start=span.start, end=span.end))
            out.extend(span.lines)
    return out


def moved_start(line_count: int, spans: list[Span]) -> int:
    """Where the next moved span starts: after the file and the spans already moved, a blank
    line and a note."""
    end = line_count
    for span in spans:
        if span.moved_to:
            end = span.moved_to + len(span.lines) - 1
    return end + 3


_making = _thread.RLock()


class PatchedLines(list):
    """The patched text of a module, as `linecache` holds it, built when first read.

    Splitting a large module into lines costs more than loading its code from the cache, and
    most processes never show a traceback through it. So the lines are made on first use:
    every method and operator of `list` is wrapped below to make them first (and those of a
    PatchedLines operand, for `==`, `+`, `<`); `list()`, `"".join()`, `sorted()` and the like
    iterate a list subclass, which goes through `__iter__`. A copy (`copy.copy()`, pickling) is
    a plain list of the lines, as `list.copy()` gives.
    """

    __slots__ = ("_pending",)

    def __init__(self, make) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self._pending = make

    def _fill(self) -> None:
        if self._pending is not None:
            # Another thread reading meanwhile waits for the lines rather than see none of them.
            with _making:
                make = self._pending
                if make is not None:
                    try:
                        list.extend(self, make())
                    finally:
                        self._pending = None

    def __radd__(self, other: object) -> object:
        # `[...] + lines`: Python tries this before list's concatenation (list has no __radd__ of
        # its own), so it makes the lines, then gives way to that concatenation, which reads them.
        self._fill()
        return NotImplemented

    def __reduce__(self) -> tuple:
        self._fill()
        return (list, (list.copy(self),))

    __hash__ = None  # like list: unhashable


def _filling(method):  # type: ignore[no-untyped-def]
    """`method` of list, called once the lines (and those of any PatchedLines argument) are made."""

    def call(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self._fill()
        for arg in args:
            if isinstance(arg, PatchedLines):
                arg._fill()
        return method(self, *args, **kwargs)

    call.__name__ = method.__name__
    call.__qualname__ = f"PatchedLines.{method.__name__}"
    call.__doc__ = method.__doc__
    return call


# Every method that list defines itself, operators included, in whatever this Python version has;
# not those that make the object or look up its attributes.
for _name, _method in list(vars(list).items()):
    if isinstance(_method, (type(list.append), type(list.__add__))) and _name not in ("__init__", "__getattribute__"):
        setattr(PatchedLines, _name, _filling(_method))
del _name, _method


def patched_source(source: bytes, spans: list[tuple]) -> str:
    """The module's patched text (for another hook's loader that compiles source itself)."""
    from _frozen_importlib_external import decode_source

    return "".join(patched_lines(split_lines(decode_source(source)), [Span.from_tuple(s) for s in spans]))


def give_to_linecache(cache: dict, path: str, size: int, mtime: float, source: bytes, spans: list[tuple]) -> None:
    """Put the text that runs into `linecache`'s `cache`, for tracebacks and `inspect.getsource`.

    The entry carries the real file's size and mtime, so `linecache.checkcache()` keeps it
    while the file is unchanged and drops it (falling back to the file) once it changes. The
    lines themselves are built only if something reads them.
    """

    def make() -> list[str]:
        from _frozen_importlib_external import decode_source

        return linecache_lines(split_lines(decode_source(source)), [Span.from_tuple(s) for s in spans])

    cache[path] = (size, mtime, PatchedLines(make), path)
