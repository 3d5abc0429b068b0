"""A file's status as evidence of its content, and the search path's distributions as evidence of the
entry points they declare: what the cache's version checks, the entry-point index, the rule-file index
and the start-up record take, and take again to see whether what they recorded still holds. One
definition of a status, and of when it is too recent to vouch for a file, for all of them.
"""

import os
import sys

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
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)


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
