"""The on-disk cache of rewritten modules.

An entry holds what a rewrite produced: the outcomes, the replaced line spans (so tracebacks
and `inspect` can show the patched text without redoing the rewrite) and the marshalled code,
or no code when nothing was applied (then upstream's own code runs and its normal `.pyc` is
used). Reading an entry never imports libcst.

Each entry records its full key: the source hash, the rules' fingerprint, the versions of
astpatch, libcst and the gated distributions, the interpreter's bytecode magic number and the
optimisation level, the module and its path. The file name is derived from that key, and the
recorded key is compared again after reading, so a renamed or colliding file is never executed.
A checksum over the body catches truncation and corruption.

Writes go to a temporary file in the same directory, then `os.replace`, so a reader sees a
whole entry or none, whatever other processes do at the same time.

Entries are code that will run in the user's process, so a directory or entry that another user
could have written is never read (see the README's threat model); astpatch creates its
directory private to the user.

This cache is astpatch's own and does not follow PYTHONDONTWRITEBYTECODE, which is about
`__pycache__` directories beside the sources; astpatch never writes there. To turn the cache
off, set ASTPATCH_NO_CACHE=1 or call `install(cache_dir=False)`.
"""

from __future__ import annotations

import _thread
import marshal
import os
import stat
import sys
import zlib

from .messages import trace, warn

# An entry: magic and format (9 bytes), a CRC-32 of the rest (4), the length of the metadata
# (4), the metadata (marshalled key, outcomes, spans), then the marshalled code, or nothing.
# The code comes last, unwrapped, so a hit unmarshals it straight from the file's bytes.
_MAGIC = b"astpatch"
FORMAT = 2
_HEADER = _MAGIC + bytes([FORMAT])


def default_directory() -> str:
    """The user cache directory, as each platform places it."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.expanduser("~\\AppData\\Local")
        return os.path.join(base, "astpatch", "Cache")
    if sys.platform == "darwin":
        return os.path.expanduser("~/Library/Caches/astpatch")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(base, "astpatch")


class Entry:
    __slots__ = ("outcomes", "spans", "code")

    def __init__(self, outcomes: list[tuple], spans: list[tuple], code: bytes | memoryview | None) -> None:
        self.outcomes = outcomes
        self.spans = spans
        self.code = code  # marshalled code, or None: upstream's code runs


def _encode(key: tuple, entry: Entry) -> bytes:
    meta = marshal.dumps((key, entry.outcomes, entry.spans))
    body = len(meta).to_bytes(4, "little") + meta + (entry.code or b"")
    return _HEADER + zlib.crc32(body).to_bytes(4, "little") + body


def _decode(data: bytes) -> tuple[tuple, Entry] | str:
    """(recorded key, entry) from an entry file's bytes, or why they are not one."""
    if not data.startswith(_MAGIC):
        return "it does not start with astpatch's header"
    if data[: len(_HEADER)] != _HEADER:
        return "another format"
    view = memoryview(data)[len(_HEADER) :]
    if len(view) < 8 or zlib.crc32(view[4:]) != int.from_bytes(view[:4], "little"):
        return "its checksum does not match (truncated or altered)"
    size = int.from_bytes(view[4:8], "little")
    try:
        key, outcomes, spans = marshal.loads(view[8 : 8 + size])
    except Exception as error:  # marshal raises several types on bad input
        return f"it does not unmarshal ({type(error).__name__})"
    if not isinstance(key, tuple) or not isinstance(outcomes, list) or not isinstance(spans, list):
        return "its contents have the wrong shape"
    code = view[8 + size :]
    return key, Entry(outcomes, spans, code if len(code) else None)


def _key_name(module: str, key: tuple) -> str:
    import _imp

    digest = _imp.source_hash(FORMAT, repr(key).encode("utf-8"))
    return f"{module}-{digest.hex()}.astpatch"


def _unsafe(st: os.stat_result) -> str | None:
    """Why a file or directory with this status must not be trusted, or None."""
    if not hasattr(os, "geteuid"):
        return None  # no POSIX ownership to check
    if st.st_uid != os.geteuid():
        return f"it is owned by uid {st.st_uid}, not by this user (uid {os.geteuid()})"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"other users can write to it (mode {stat.filemode(st.st_mode)})"
    return None


class Cache:
    """A cache directory, or `Cache(None)` for no cache."""

    def __init__(self, directory: str | None, *, strict: bool = False) -> None:
        self.directory = directory
        self.strict = strict
        self._lock = _thread.allocate_lock()
        self._usable: bool | None = None  # directory checked once per process
        self._write_disabled = False

    def __repr__(self) -> str:
        return f"Cache({self.directory!r})"

    def _directory_ok(self, create: bool) -> bool:
        if self.directory is None:
            return False
        if self._usable is not None:
            return self._usable
        with self._lock:
            if self._usable is not None:
                return self._usable
            try:
                st = os.lstat(self.directory)
            except FileNotFoundError:
                if not create:
                    return False  # nothing cached yet; decide when writing
                try:
                    os.makedirs(self.directory, mode=0o700, exist_ok=True)
                    st = os.lstat(self.directory)
                except OSError as error:
                    self._usable = False
                    warn(f"astpatch: cannot create the cache directory {self.directory} ({error}); "
                         "modules are patched without caching. Set ASTPATCH_CACHE_DIR to a writable "
                         "directory, or ASTPATCH_NO_CACHE=1 to silence this.", strict=self.strict)
                    return False
            except OSError as error:
                self._usable = False
                warn(f"astpatch: cannot use the cache directory {self.directory} ({error}); modules "
                     "are patched without caching. Set ASTPATCH_CACHE_DIR to a usable directory.",
                     strict=self.strict)
                return False
            reason = "it is not a directory" if not stat.S_ISDIR(st.st_mode) else _unsafe(st)
            if reason:
                self._usable = False
                warn(f"astpatch: the cache directory {self.directory} is not used because {reason}. "
                     "Modules are patched without caching. Make it private to your user "
                     "(chmod 700), or set ASTPATCH_CACHE_DIR to a directory only you can write.",
                     strict=self.strict)
                return False
            self._usable = True
            return True

    def usable(self, create: bool = False) -> bool:
        """Whether the directory exists (or, with `create`, was made) and is safe to use."""
        return self._directory_ok(create=create)

    def load(self, module: str, key: tuple) -> Entry | None:
        """The entry for `key`, or None on a miss or any problem with it."""
        if not self._directory_ok(create=False):
            return None
        path = os.path.join(self.directory, _key_name(module, key))  # type: ignore[arg-type]
        try:
            with open(path, "rb") as f:
                st = os.fstat(f.fileno())
                if not stat.S_ISREG(st.st_mode):
                    return self._corrupt(path, "it is not a regular file")
                unsafe = _unsafe(st)
                if unsafe:
                    warn(f"astpatch: the cache entry {path} is not used because {unsafe}; "
                         "the module is rewritten instead. Delete it, or run `astpatch cache clear`.",
                         strict=self.strict)
                    return None
                data = f.read()
        except FileNotFoundError:
            trace(f"cache miss for {module}: {path}")
            return None
        except IsADirectoryError:
            return self._corrupt(path, "it is a directory")
        except OSError as error:
            trace(f"cache entry {path} unreadable: {error}")
            return None
        decoded = _decode(data)
        if decoded == "another format":
            trace(f"cache entry {path} has another format; replacing it")
            return None
        if isinstance(decoded, str):
            return self._corrupt(path, decoded)
        recorded_key, entry = decoded
        if recorded_key != key:
            trace(f"cache entry {path} records another key; replacing it")
            return None
        trace(f"cache hit for {module}: {path}")
        return entry

    def _corrupt(self, path: str, reason: str) -> Entry | None:
        """Say once that the entry at `path` is damaged; it is treated as a miss (None)."""
        warn(f"astpatch: ignored the cache entry {path} because {reason}; it will be rewritten.",
             strict=self.strict)
        return None

    def store(self, module: str, key: tuple, entry: Entry) -> None:
        """Write `entry` atomically; on any failure, stop writing for this process (one warning)."""
        if self._write_disabled or not self._directory_ok(create=True):
            return
        directory = self.directory
        assert directory is not None
        final = os.path.join(directory, _key_name(module, key))
        data = _encode(key, entry)
        temporary = os.path.join(directory, f".{os.path.basename(final)}.{os.getpid()}.{_thread.get_ident()}.tmp")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o600)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            try:
                os.replace(temporary, final)
            except IsADirectoryError:
                os.rmdir(final)  # an empty directory in the entry's place: replace it
                os.replace(temporary, final)
        except OSError as error:
            try:
                os.unlink(temporary)
            except OSError:
                pass
            self._write_disabled = True
            warn(f"astpatch: cannot write to the cache directory {directory} ({error}); modules are "
                 "patched without caching in this process. Set ASTPATCH_CACHE_DIR to a writable "
                 "directory, or ASTPATCH_NO_CACHE=1 to silence this.", strict=self.strict)
            return
        trace(f"cached {module}: {final}")


def read_entry(path: str) -> tuple[tuple, list[tuple]] | str:
    """(recorded key, outcomes) of the entry at `path`, or why it cannot be read; for `cache info`."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as error:
        return f"unreadable: {error.strerror or error}"
    decoded = _decode(data)
    if isinstance(decoded, str):
        return f"not usable: {decoded}"
    return decoded[0], decoded[1].outcomes


def entry_files(directory: str) -> list[str]:
    """The cache's entry files (and leftover temporary files) in `directory`."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    return sorted(os.path.join(directory, n) for n in names
                  if n.endswith((".astpatch", ".tmp")) or n == "entry-points.index")
