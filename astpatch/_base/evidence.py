"""What a file's status tells: whether its content may have changed since it was recorded, and who
could have written it.

Evidence: a file's status stands for its content, and the search path's distributions for the
entry points they declare: what the cache's version checks, the entry-point index, the rule-file
index and the start-up record take, and take again to see whether what they recorded still holds.
One definition of a status, and of when it is too recent to vouch for a file, for all of them.

Trust: astpatch executes what it reads from its cache and from rule files, so it trusts only what
this user (or, for rule files, root) alone could have written: owned by them, not writable by group
or others, and not reached through a symbolic link or a directory that another user could repoint or
change. Where the platform has no POSIX ownership (Windows), nothing is refused.
"""

import os
import stat
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

# A file changed less than this long before its status was taken may change again within the file
# system's timestamp granularity with its size and times unchanged (git's "racy" entries): its
# status is then no evidence of its content. The one bound every such check uses (version
# evidence, the entry-point index's stamp, a timestamp pyc's freshness).
RACY_NS = 2_000_000_000

_DIGEST_KEY = 3  # SipHash's key for a file's digest: any constant a C long holds

# The index's stamp covers what discovery's answer depends on, and nothing else:
# - which distributions are installed: for each sys.path entry, the names of its metadata
#   directories (`*.dist-info`, `*.egg-info`), which is what importlib.metadata looks for. Not the
#   entries' modification times: "" (the current directory) and a script's directory change
#   whenever any file is created there, site-packages whenever a .pth file or a module is, and
#   every such process would discover again. A directory's status only spares listing it again:
#   while it holds, no entry was created, removed or renamed in it.
# - what each declares: the status of its entry_points.txt (reinstalling the same version, as an
#   editable install does, keeps the directory's name but rewrites the file);
# - what each indexed entry point's rules target: the status of its rule modules' files (the
#   module it names, and that module's submodules loaded with it), so an edited rule module is seen.
# A status recorded less than two seconds after the change it shows may stay the same through the
# next change (the file system's timestamp granularity, git's "racy" entries): such a file's
# content is compared too (by digest), and such a directory is listed again.
_METADATA_SUFFIXES = (".dist-info", ".egg-info")


def search_path() -> list[str]:
    return [entry for entry in sys.path if isinstance(entry, str)]


def file_status(path: str) -> tuple[int, int, int, int] | None:
    """(mtime_ns, ctime_ns, size, inode) of a file or directory, None when there is none."""
    return file_statuses("", (path,))[0]


def file_statuses(prefix: str, names: "Iterable[str]") -> list[tuple[int, int, int, int] | None]:
    """The `file_status` of `prefix + name` for each name, in one loop: a start-up takes a thousand of
    them for a thousand rule files, and a call each would cost half as much again as the `stat`s."""
    take = os.stat
    statuses: list[tuple[int, int, int, int] | None] = []
    for name in names:
        try:
            st = take(prefix + name)
        except (OSError, ValueError):
            statuses.append(None)
        else:
            statuses.append((st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino))
    return statuses


def status_evidence(path: str) -> tuple:
    """("stat", path, mtime_ns, ctime_ns, size, inode) (None for each when there is nothing at `path`):
    a status as the cache's version evidence records it, compared again to see it unchanged."""
    return ("stat", path, *(file_status(path) or (None, None, None, None)))


def settled(status: tuple[int, int, int, int] | None, now: int) -> bool:
    """Whether a status taken at `now` vouches for the file by itself (see above)."""
    return status is not None and now - max(status[0], status[1]) >= RACY_NS


def _digest(path: str) -> bytes | None:
    import _imp

    try:
        with open(path, "rb") as f:
            return _imp.source_hash(_DIGEST_KEY, f.read())
    except (OSError, ValueError):
        return None


def evidence(path: str, now: int, content: bool = True) -> tuple:
    """(path, status, check) of a file, its status taken at `now` or later: `check` is None when
    the status vouches for the file, else the digest of its content, or False when nothing does
    (`content` False: a zip file is not read whole)."""
    status = file_status(path)
    if status is None or settled(status, now):
        return (path, status, None)
    return (path, status, _digest(path) if content else False)


def holds(item: tuple) -> bool:
    """Whether a file's recorded evidence still holds."""
    path, status, check = item
    if check is False or file_status(path) != status:
        return False
    return check is None or _digest(path) == check


def _names(directory: str) -> tuple[str, ...] | str | None:
    """The names of the metadata directories in a sys.path entry; "file" for a zip file (its
    distributions are found too), None when there is nothing there."""
    try:
        with os.scandir(directory) as found:
            return tuple(sorted(e.name for e in found if e.name.lower().endswith(_METADATA_SUFFIXES)
                                or e.name.lower() == "egg-info"))  # EGG-INFO: inside an .egg directory
    except NotADirectoryError:
        return "file"
    except (OSError, ValueError):
        return None


def _declarations(directory: str, names: tuple[str, ...] | str | None) -> list[tuple[str, bool]]:
    """The files that say which entry points a sys.path entry's distributions declare, with
    whether their content may be read."""
    if names == "file":
        return [(directory, False)]
    return [(os.path.join(directory, name, "entry_points.txt"), True) for name in names or ()]


def stamp() -> tuple:
    """The installed distributions and the status of their entry_points.txt (see above); taken
    before discovery reads them, so that what changes meanwhile makes the index stale."""
    import time

    now = time.time_ns()
    entries: list[tuple] = []
    files: list[tuple] = []
    for entry in search_path():
        directory = entry or "."
        status = file_status(directory)  # before listing: a change after it changes the status
        names = _names(directory)
        entries.append((entry, status if settled(status, now) else None, names))
        files.extend(evidence(path, now, content) for path, content in _declarations(directory, names))
    return tuple(entries), tuple(files)


def stamp_holds(recorded: tuple) -> bool:
    entries, files = recorded
    if [entry for entry, _, _ in entries] != search_path():
        return False
    for entry, status, names in entries:
        directory = entry or "."
        if (status is None or file_status(directory) != status) and _names(directory) != names:
            return False
    return all(holds(item) for item in files)


# -- trust: who could have written a path ---------------------------------------------------------

def untrusted(st: os.stat_result, *, root_too: bool = False) -> str | None:
    """Why a file or directory with this status must not be trusted, or None: another user than this one
    (or, with `root_too`, root) owns it, or group or others can write to it."""
    if not hasattr(os, "geteuid"):
        return None  # no POSIX ownership to check
    if st.st_uid != os.geteuid() and not (root_too and st.st_uid == 0):
        return f"it is owned by uid {st.st_uid}, not by this user (uid {os.geteuid()}){' or root' if root_too else ''}"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"other users can write to it (mode {stat.filemode(st.st_mode)})"
    return None


def open_to_others(directory: str, owner: int) -> str | None:
    """Why another user could replace or repoint an entry of `directory` owned by `owner`, or None: the
    directory is neither this user's nor root's, or group or others can write to it (unless it is sticky,
    as /tmp is, and the entry is this user's or root's: then only they can remove or rename it)."""
    if not hasattr(os, "geteuid"):
        return None
    try:
        st = os.stat(directory or os.curdir)
    except OSError as error:
        return f"{directory} cannot be examined ({error.strerror or error})"
    if st.st_uid not in (os.geteuid(), 0):
        return f"{directory} is owned by uid {st.st_uid}, not by this user (uid {os.geteuid()}) or root"
    sticky = st.st_mode & stat.S_ISVTX and owner in (os.geteuid(), 0)
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not sticky:
        return f"other users can write to {directory} (mode {stat.filemode(st.st_mode)})"
    return None


def untrusted_links(path: str) -> str | None:
    """Why a symbolic link that `path` goes through (itself, or the links it names in turn; not its
    directories) could be repointed by another user, or None. What a link names is checked by the caller."""
    path = path.rstrip(os.sep + (os.altsep or "")) or path  # with a trailing slash, lstat() follows the link
    for _ in range(40):
        try:
            st = os.lstat(path)
        except OSError:
            return None  # nothing there to repoint
        if not stat.S_ISLNK(st.st_mode):
            return None
        directory = os.path.dirname(path)
        problem = open_to_others(directory, st.st_uid)
        if problem:
            return f"the symbolic link {path} can be repointed by another user: {problem}"
        path = os.path.join(directory, os.readlink(path))
    return f"it goes through too many symbolic links (the last: {path})"


def file_type(mode: int) -> str:
    """What kind of file this mode is, for messages: "a FIFO", "a directory"..."""
    kinds = [(stat.S_ISREG, "a regular file"), (stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
             (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")]
    return next((name for test, name in kinds if test(mode)), "of an unknown kind")
