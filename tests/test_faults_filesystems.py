"""Filesystems: a missing, read-only, full or unwritable cache, and read-only site-packages.

astpatch still patches, without caching where it cannot write, and warns once at most. The
read-only cases mount the directory read-only in a private mount namespace (`unshare -rm`), so
they hold for root too.
"""

from __future__ import annotations

import stat

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
