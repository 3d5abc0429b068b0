"""The cache directory as a place astpatch writes and later trusts: one policy for every file in it.

Whatever astpatch writes there (cached code, the entry-point index) is read back by later
processes and decides what code runs, so every file goes through `Store`:

- The directory is created private to the user (0700), and is not used at all when another user
  owns it or could write to it; nor is any file in it that another user owns or could write.
- Writes go to a temporary file in the same directory, then `os.replace`, so a reader sees a
  whole file or none, whatever other processes do at the same time; files are 0600.
- A write that fails (read-only mount, full disk) gives one warning, and the process stops
  writing: the program still runs, patched, without caching.
"""

from __future__ import annotations

import _thread
import os
import stat

from .messages import trace, warn


def untrusted(st: os.stat_result) -> str | None:
    """Why a file or directory with this status must not be trusted, or None."""
    if not hasattr(os, "geteuid"):
        return None  # no POSIX ownership to check
    if st.st_uid != os.geteuid():
        return f"it is owned by uid {st.st_uid}, not by this user (uid {os.geteuid()})"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"other users can write to it (mode {stat.filemode(st.st_mode)})"
    return None


class Unreadable(Exception):
    """Why a file cannot be used: `kind` is "missing", "untrusted", "damaged" or "error"."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


def write_atomically(path: str, data: bytes) -> None:
    """Write `data` to `path` whole or not at all (mode 0600); raises OSError, leaving no temporary file."""
    directory, name = os.path.split(path)
    temporary = os.path.join(directory, f".{name}.{os.getpid()}.{_thread.get_ident()}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        try:
            os.replace(temporary, path)
        except IsADirectoryError:
            os.rmdir(path)  # an empty directory in the file's place: replace it
            os.replace(temporary, path)
    except OSError:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


class Store:
    """A directory of files astpatch trusts, or `Store(None)` for none (no caching)."""

    def __init__(self, directory: str | None, *, strict: bool = False) -> None:
        self.directory = directory
        self.strict = strict
        self._lock = _thread.allocate_lock()
        self._usable: bool | None = None  # directory checked once per process
        self._write_disabled = False

    def __repr__(self) -> str:
        return f"Store({self.directory!r})"

    @property
    def write_failed(self) -> bool:
        """Whether a write failed in this process (and writing stopped)."""
        return self._write_disabled

    def path(self, name: str) -> str:
        assert self.directory is not None
        return os.path.join(self.directory, name)

    def usable(self, create: bool = False) -> bool:
        """Whether the directory exists (or, with `create`, was made) and is safe to use."""
        if self.directory is None:
            return False
        if self._usable is not None:
            return self._usable
        with self._lock:
            if self._usable is None:
                self._usable = self._check(self.directory, create)
            return self._usable if self._usable is not None else False

    def _check(self, directory: str, create: bool) -> bool | None:
        """The directory's verdict, or None when it does not exist yet and `create` is off."""
        try:
            st = os.lstat(directory)
        except FileNotFoundError:
            if not create:
                return None  # nothing stored yet; decide when writing
            try:
                os.makedirs(directory, mode=0o700, exist_ok=True)
                st = os.lstat(directory)
            except OSError as error:
                warn(f"astpatch: cannot create the cache directory {directory} ({error}); "
                     "modules are patched without caching. Set ASTPATCH_CACHE_DIR to a writable "
                     "directory, or ASTPATCH_NO_CACHE=1 to silence this.", strict=self.strict)
                return False
        except OSError as error:
            warn(f"astpatch: cannot use the cache directory {directory} ({error}); modules "
                 "are patched without caching. Set ASTPATCH_CACHE_DIR to a usable directory.",
                 strict=self.strict)
            return False
        reason = "it is not a directory" if not stat.S_ISDIR(st.st_mode) else untrusted(st)
        if reason:
            warn(f"astpatch: the cache directory {directory} is not used because {reason}. "
                 "Modules are patched without caching. Make it private to your user "
                 "(chmod 700), or set ASTPATCH_CACHE_DIR to a directory only you can write.",
                 strict=self.strict)
            return False
        return True

    def read(self, name: str) -> bytes:
        """The bytes of file `name`, if this user alone can have written it; else `Unreadable`."""
        if not self.usable():
            raise Unreadable("missing", "there is no usable cache directory")
        path = self.path(name)
        try:
            with open(path, "rb") as f:
                st = os.fstat(f.fileno())
                if not stat.S_ISREG(st.st_mode):
                    raise Unreadable("damaged", "it is not a regular file")
                unsafe = untrusted(st)
                if unsafe:
                    raise Unreadable("untrusted", unsafe)
                return f.read()
        except FileNotFoundError:
            raise Unreadable("missing", "it does not exist") from None
        except IsADirectoryError:
            raise Unreadable("damaged", "it is a directory") from None
        except OSError as error:
            raise Unreadable("error", f"it cannot be read ({error.strerror or error})") from None

    def write(self, name: str, data: bytes) -> bool:
        """Write file `name` atomically; on any failure, one warning and no more writes in this process."""
        if self._write_disabled or not self.usable(create=True):
            return False
        path = self.path(name)
        try:
            write_atomically(path, data)
        except OSError as error:
            self._write_disabled = True
            warn(f"astpatch: cannot write to the cache directory {self.directory} ({error}); modules are "
                 "patched without caching in this process. Set ASTPATCH_CACHE_DIR to a writable "
                 "directory, or ASTPATCH_NO_CACHE=1 to silence this.", strict=self.strict)
            return False
        trace(f"stored {path}")
        return True

    def files(self, suffixes: tuple[str, ...]) -> list[str]:
        """The paths of the files whose names end with one of `suffixes` (for `astpatch cache`)."""
        if self.directory is None:
            return []
        try:
            names = os.listdir(self.directory)
        except OSError:
            return []
        return sorted(os.path.join(self.directory, n) for n in names if n.endswith(suffixes))
