"""The cache directory as a place astpatch writes and later trusts: one policy for every file in it.

Whatever astpatch writes there (cached code, the entry-point index) is read back by later
processes and decides what code runs, so every file goes through `Store`:

- The directory is created private to the user (0700), and is not used at all when another user
  owns it or could write to it; nor is any file in it that another user owns or could write. A
  symbolic link to it is followed when no other user could repoint it (`untrusted_links`).
- An entry that is not a regular file (a FIFO, a device, a socket) is never opened for reading.
- Writes go to a temporary file in the same directory, then `os.replace`, so a reader sees a
  whole file or none, whatever other processes do at the same time; files are 0600.
- A write that fails (read-only mount, full disk) gives one warning, and the process stops
  writing: the program still runs, patched, without caching.
- The directory may be shared with other programs (ASTPATCH_CACHE_DIR=~/.cache, say): astpatch
  removes only files named as it names its own (`own_name`, `temporary_of`) and never looks at others.
- The temporary files of writers that died (SIGKILL, power loss) are swept (`OwnFile.orphaned`),
  and the least recently used files are evicted beyond a size bound (`Store.evict`); both only
  after a write or when asked (`astpatch cache prune`), never when a file is read.
"""

import _thread
import os
import stat
import time
from io import FileIO

from .evidence import file_type, untrusted, untrusted_links
from .messages import trace, warn


class Unreadable(Exception):
    """Why a file cannot be used: `kind` is "missing", "untrusted", "damaged" or "error"."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


def temporary_name(name: str) -> str:
    """The temporary file `write_atomically` writes before it becomes `name`: `.<name>.<pid>.<thread id>.tmp`."""
    return f".{name}.{os.getpid()}.{_thread.get_ident()}.tmp"


def temporary_of(name: str) -> tuple[str, int] | None:
    """(the name it was to become, the writer's pid) when `name` has the shape of `temporary_name`'s."""
    if not (name.startswith(".") and name.endswith(".tmp")):
        return None
    parts = name[1:-4].rsplit(".", 2)
    if len(parts) != 3 or not parts[0] or not all(p.isascii() and p.isdigit() for p in parts[1:]):
        return None
    return parts[0], int(parts[1])


# The suffix of the indexes astpatch keeps beside its entries: the entry points', the rule files'
# and the start-up records (`<kind>-<digest>.index`).
INDEX_SUFFIX = ".index"


def own_name(name: str, suffixes: tuple[str, ...]) -> bool:
    """Whether `name` is one astpatch gives its files: `<stem>-<16 hex digits><suffix>`, as the cache's
    entries (`<module>-<key digest>.astpatch`) and the entry-point indexes (`entry-points-<digest>.index`)."""
    suffix = next((s for s in suffixes if name.endswith(s)), None)
    if suffix is None:
        return False
    stem, _, digest = name[: -len(suffix)].rpartition("-")
    return bool(stem) and not stem.startswith(".") and len(digest) == 16 and all(c in "0123456789abcdef" for c in digest)


# A write takes far less than a second. A temporary file is an orphan when it has not been written
# to for ORPHAN_AFTER seconds and its writer is not a live process on this host, or when it has not
# been written to for ORPHAN_ANYWAY_AFTER seconds: a directory shared over the network also holds
# other hosts' temporary files, whose pids mean nothing here, and a pid can be reused.
ORPHAN_AFTER = 60.0
ORPHAN_ANYWAY_AFTER = 24 * 3600.0


def alive(pid: int) -> bool:
    """Whether a process `pid` runs on this host (assumed where it cannot be asked harmlessly)."""
    if os.name != "posix":
        return True  # os.kill would terminate it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # another user's process
    return True


class OwnFile:
    """One of astpatch's files in the directory, with its status; `pid`, for a temporary file, its writer's."""

    __slots__ = ("path", "name", "status", "pid")

    def __init__(self, path: str, status: os.stat_result, pid: int | None) -> None:
        self.path = path
        self.name = os.path.basename(path)
        self.status = status
        self.pid = pid

    @property
    def last_used(self) -> float:
        """When it was last read or written, as the filesystem records it (most update the access
        time at most daily; a `noatime` mount never does, and then this is when it was written)."""
        return max(self.status.st_atime, self.status.st_mtime)

    def orphaned(self, now: float) -> bool:
        """Whether it is a temporary file whose writer died (see ORPHAN_AFTER)."""
        if self.pid is None:
            return False
        idle = now - self.status.st_mtime
        return idle > ORPHAN_ANYWAY_AFTER or (idle > ORPHAN_AFTER and not alive(self.pid))

    def remove(self) -> str | None:
        """Unlink it; None when it is gone, else why it is not."""
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass  # removed by another process at the same time
        except OSError as error:
            return error.strerror or str(error)
        return None


def write_atomically(path: str, data: bytes) -> None:
    """Write `data` to `path` whole or not at all (mode 0600); raises OSError, leaving no temporary file."""
    directory, name = os.path.split(path)
    temporary = os.path.join(directory, temporary_name(name))
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


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


class Store:
    """A directory of files astpatch trusts, or `Store(None)` for none (no caching)."""

    def __init__(self, directory: str | None, *, strict: bool = False, by_argument: bool = False) -> None:
        self.directory = directory
        self.strict = strict
        # Advice names what chose the directory: ASTPATCH_CACHE_DIR does not move one that install() was given.
        self._elsewhere = "give install(cache_dir=...)" if by_argument else "set ASTPATCH_CACHE_DIR to"
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
            st = os.stat(directory)  # what a symbolic link names; the link itself is checked below
        except FileNotFoundError:
            if not create:
                return None  # nothing stored yet; decide when writing
            try:
                if os.path.islink(directory):
                    raise OSError(f"it is a symbolic link to {os.readlink(directory)}, which does not exist")
                os.makedirs(directory, mode=0o700, exist_ok=True)
                st = os.stat(directory)
            except OSError as error:
                warn(f"astpatch: cannot create the cache directory {directory} ({error}); "
                     f"modules are patched without caching. {_sentence(self._elsewhere)} a writable "
                     "directory, or ASTPATCH_NO_CACHE=1 to silence this.", strict=self.strict)
                return False
        except OSError as error:
            warn(f"astpatch: cannot use the cache directory {directory} ({error}); modules are patched "
                 f"without caching. {_sentence(self._elsewhere)} a usable directory.",
                 strict=self.strict)
            return False
        reason = untrusted_links(directory) or (
            untrusted(st) if stat.S_ISDIR(st.st_mode) else f"it is {file_type(st.st_mode)}, not a directory")
        if reason:
            warn(f"astpatch: the cache directory {directory} is not used because {reason}. Modules are patched "
                 f"without caching. {self._advice(directory, st, reason)}", strict=self.strict)
            return False
        return True

    def _advice(self, directory: str, st: os.stat_result, reason: str) -> str:
        """Only what this user can do about an unusable directory: chmod what they own, remove what is
        theirs to remove, else pick another directory."""
        me = os.geteuid() if hasattr(os, "geteuid") else None
        elsewhere = f"{self._elsewhere} a directory only you can write."
        if st.st_uid == me and reason.startswith("other users can write to it"):
            return f"Make it private to your user (chmod 700 {directory}), or {elsewhere}"
        if os.lstat(directory).st_uid == me and os.access(os.path.dirname(directory) or os.curdir, os.W_OK):
            return f"Remove it, or {elsewhere}"
        return _sentence(elsewhere)

    def read(self, name: str) -> bytes:
        """The bytes of file `name`, if this user alone can have written it; else `Unreadable`. Only a
        regular file is opened (a FIFO would block the import, a device could act on being opened)."""
        if not self.usable():
            raise Unreadable("missing", "there is no usable cache directory")
        path = self.path(name)
        try:
            mode = os.stat(path).st_mode
            if not stat.S_ISREG(mode):
                raise Unreadable("damaged", f"it is {file_type(mode)}")
            # O_NONBLOCK: should it become a FIFO in between, opening it does not wait for a writer.
            flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
            with FileIO(os.open(path, flags)) as f:  # unbuffered: the whole file in one read
                st = os.fstat(f.fileno())
                if not stat.S_ISREG(st.st_mode):
                    raise Unreadable("damaged", f"it is {file_type(st.st_mode)}")
                unsafe = untrusted(st)
                if unsafe:
                    raise Unreadable("untrusted", unsafe)
                return f.readall()
        except FileNotFoundError:
            raise Unreadable("missing", "it does not exist") from None
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

    def own_files(self, suffixes: tuple[str, ...]) -> list[OwnFile]:
        """astpatch's files: the names `own_name` accepts with one of `suffixes`, and their temporary
        files, by name. No other file is looked at, let alone removed."""
        if self.directory is None:
            return []
        try:
            names = os.listdir(self.directory)
        except OSError:
            return []
        found = []
        for name in sorted(names):
            temporary = temporary_of(name)
            if not own_name(temporary[0] if temporary else name, suffixes):
                continue
            path = os.path.join(self.directory, name)
            try:
                status = os.lstat(path)
            except OSError:
                continue  # removed meanwhile
            if not stat.S_ISDIR(status.st_mode):  # astpatch makes no directories: not its own
                found.append(OwnFile(path, status, temporary[1] if temporary else None))
        return found

    def sweep(self, suffixes: tuple[str, ...]) -> list[tuple[OwnFile, str | None]]:
        """Remove the temporary files of writers that died (see ORPHAN_AFTER): each, and why it
        could not be removed (None: it was)."""
        now = time.time()
        return [(f, f.remove()) for f in self.own_files(suffixes) if f.orphaned(now)]

    def evict(self, suffixes: tuple[str, ...], max_bytes: int | None, unused_for: float | None = None,
              keep: str | None = None) -> list[tuple[OwnFile, str, str | None]]:
        """Remove astpatch's files (temporary ones aside) unused for more than `unused_for` seconds, then
        the least recently used until the others take at most `max_bytes`; never the file named `keep`.
        Each file chosen, why, and why it could not be removed (None: it was)."""
        now = time.time()
        files = [f for f in self.own_files(suffixes) if f.pid is None]
        total = sum(f.status.st_size for f in files)
        chosen = []
        for f in sorted((f for f in files if f.name != keep), key=lambda f: f.last_used):
            if unused_for is not None and now - f.last_used > unused_for:
                why = f"unused for {(now - f.last_used) / 86400:.0f} days"
            elif max_bytes is not None and total > max_bytes:
                why = f"least recently used, beyond {max_bytes} bytes"
            else:
                continue
            problem = f.remove()
            total -= f.status.st_size if problem is None else 0
            chosen.append((f, why, problem))
        return chosen
