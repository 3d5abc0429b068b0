"""Who could have written a path: the owner and mode checks that the cache and the rule files share.

astpatch executes what it reads from its cache and from rule files, so it trusts only what this user
(or, for rule files, root) alone could have written: owned by them, not writable by group or others,
and not reached through a symbolic link or a directory that another user could repoint or change.
Where the platform has no POSIX ownership (Windows), nothing is refused. (What a file's status says
of its content is `astpatch._base.evidence`'s.)
"""

import os
import stat


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
