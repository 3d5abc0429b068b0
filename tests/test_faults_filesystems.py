"""Filesystems: a missing, read-only, full or unwritable cache, read-only site-packages, a cache path
given relative, with ~ or as a symbolic link, and what is not a regular file at an entry's path.

astpatch still patches, without caching where it cannot write, and warns once at most. The
read-only cases mount the directory read-only in a private mount namespace (`unshare -rm`), so
they hold for root too.
"""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from scenario import Scenario


def test_a_missing_cache_directory_is_created_private(tmp_path):
    """The cache directory does not exist yet."""
    s = Scenario(tmp_path)
    s.cache = tmp_path / "deep" / "er" / "cache"
    run = s.run()
    run.assert_patched(from_cache=False)
    assert run.warnings == []
    assert stat.S_IMODE(s.cache.stat().st_mode) == 0o700
    s.run().assert_patched(from_cache=True)


def test_a_read_only_cache_directory(tmp_path):
    """The cache directory is on a read-only mount."""
    s = Scenario(tmp_path)
    s.cache.mkdir(mode=0o700)
    run = s.run(read_only=(s.cache,))
    run.assert_patched(from_cache=False)
    assert len(run.warnings) == 1
    assert run.warnings[0].startswith(f"astpatch: cannot write to the cache directory {s.cache} ([Errno 30] Read-only file system")
    assert s.entries() == []


def test_a_read_only_cache_that_was_warmed_is_used(tmp_path):
    """A cache warmed while building an image, read-only afterwards."""
    s = Scenario(tmp_path)
    s.run().assert_patched(from_cache=False)
    run = s.run(read_only=(s.cache,))
    run.assert_patched(from_cache=True)
    assert run.warnings == [] and run["libcst"] is False


def test_a_full_disk(tmp_path):
    """Writes fail with EFBIG, as on a full filesystem (a file size limit of 1 KiB)."""
    s = Scenario(tmp_path)
    before = "import resource, signal; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); " \
             "resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))"
    run = s.run(before=before)
    run.assert_patched(from_cache=False)
    assert len(run.warnings) == 1 and "File too large" in run.warnings[0]
    assert run.warnings[0].startswith(f"astpatch: cannot write to the cache directory {s.cache}")
    assert [p.name for p in s.cache.iterdir() if p.suffix in (".tmp", ".astpatch")] == []  # the partial file was removed


def test_an_unwritable_cache_path(tmp_path):
    """The cache path goes through a regular file."""
    s = Scenario(tmp_path)
    (tmp_path / "file").write_text("")
    s.cache = tmp_path / "file" / "cache"
    for _ in range(2):
        run = s.run()
        run.assert_patched(from_cache=False)
        assert len(run.warnings) == 1 and "Not a directory" in run.warnings[0]


def test_read_only_site_packages(tmp_path):
    """The target's site-packages is on a read-only mount: nothing is written beside it."""
    s = Scenario(tmp_path)
    run = s.run(read_only=(s.site,), PYTHONDONTWRITEBYTECODE="")
    run.assert_patched(from_cache=False)
    assert run.warnings == []
    s.run(read_only=(s.site,)).assert_patched(from_cache=True)
    assert not (s.site / "__pycache__").exists()


# The cache path as given: relative, or starting with ~ (in quotes, a shell leaves ~ alone), in
# install(cache_dir=...) or in ASTPATCH_CACHE_DIR; the program changes directory after install().
CACHE_PATHS = {
    "relative, install()": ("cache", "install"),
    "relative, ASTPATCH_CACHE_DIR": ("cache", "env"),
    "~, install()": ("~/cache", "install"),
    "~, ASTPATCH_CACHE_DIR": ("~/cache", "env"),
}


@pytest.mark.parametrize("case", CACHE_PATHS)
def test_a_relative_or_home_cache_path_is_resolved_once_at_install(tmp_path, case):
    """A relative or ~ cache path: resolved when install() runs, so a later chdir does not move it, and ~ is home."""
    given, where = CACHE_PATHS[case]
    work, elsewhere, home = (tmp_path / name for name in ("work", "elsewhere", "home"))
    for directory in (work, elsewhere, home):
        directory.mkdir()
    s = Scenario(tmp_path, cwd=work)
    expected = (home if given.startswith("~") else work) / "cache"  # the oracle: the shell's reading of the path
    rules = f"rules=[{str(s.rule)!r}]"
    install_args = f"{rules}, cache_dir={given!r}" if where == "install" else rules
    env = {"HOME": str(home), "ASTPATCH_CACHE_DIR": given if where == "env" else None}
    after = f"import os; os.chdir({str(elsewhere)!r}); print(handle.cache_directory)"
    first = s.run(after=after, install_args=install_args, **env)
    first.assert_patched(from_cache=False)
    assert first.warnings == [] and first.stdout.splitlines()[0] == str(expected)
    s.cache = expected
    assert len(s.entries()) == 1
    assert sorted(p.name for p in tmp_path.rglob("*.astpatch")) == [s.entries()[0].name]  # nowhere else: no ./~
    s.run(after=after, install_args=install_args, **env).assert_patched(from_cache=True)


@pytest.mark.parametrize("where", ["a private directory", "a sticky directory others can write"])
def test_a_symlinked_cache_directory_is_used(tmp_path, where):
    """The cache path is a symbolic link, in a directory only its owner can change, to a private directory."""
    target = tmp_path / "real-cache"
    target.mkdir(mode=0o700)
    links = tmp_path / "links"
    links.mkdir()
    os.chmod(links, 0o755 if where == "a private directory" else 0o1777)  # sticky: as /tmp
    s = Scenario(tmp_path)
    s.cache = links / "cache"
    s.cache.symlink_to(target)
    first = s.run()
    first.assert_patched(from_cache=False)
    assert first.warnings == []
    assert [p.name for p in target.iterdir() if p.suffix == ".astpatch"] == [p.name for p in s.entries()] != []
    second = s.run()
    second.assert_patched(from_cache=True)
    assert second.warnings == [] and second["libcst"] is False


ENTRY_KINDS = ["a FIFO", "a socket"]


def replace_by(path: Path, kind: str, tmp_path: Path) -> None:
    """Put a FIFO or a socket at `path` (a socket is bound at a short path, then renamed: AF_UNIX paths are short)."""
    path.unlink()
    if kind == "a FIFO":
        os.mkfifo(path)
        return
    short = tmp_path / "s"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(short))
    os.replace(short, path)
    assert stat.S_ISSOCK(path.lstat().st_mode)


@pytest.mark.parametrize("kind", ENTRY_KINDS)
def test_an_entry_path_that_is_not_a_regular_file(tmp_path, kind):
    """A FIFO or a socket at an entry's path: never opened (a FIFO would block the import), one warning, replaced."""
    s = Scenario(tmp_path)
    s.run().assert_patched(from_cache=False)
    (entry,) = s.entries()
    replace_by(entry, kind, tmp_path)
    run = s.run(timeout=30)  # before the fix, the import waited for a writer to the FIFO
    run.assert_patched(from_cache=False)
    assert run.warnings == [f"astpatch: ignored the cache entry {entry} because it is {kind}; it will be rewritten."]
    assert stat.S_ISREG(entry.lstat().st_mode)
    again = s.run()
    again.assert_patched(from_cache=True)
    assert again.warnings == []


def test_a_fifo_at_the_entry_point_index_path(tmp_path):
    """A FIFO at the entry-point index's path: not opened, discovered again (a damaged index is silent), replaced."""
    s = Scenario(tmp_path)
    s.run().assert_patched(from_cache=False)
    (index,) = s.cache.glob("entry-points-*.index")
    replace_by(index, "a FIFO", tmp_path)
    run = s.run(timeout=30)
    run.assert_patched(from_cache=True)
    assert run.warnings == [] and stat.S_ISREG(index.lstat().st_mode)
