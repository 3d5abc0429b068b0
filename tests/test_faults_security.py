"""Security of the cache: nothing another user could have written is ever loaded."""

from __future__ import annotations

import os
import stat

import pytest

from scenario import Scenario

OTHER_UID = 65534  # nobody


def as_root():
    if os.geteuid() != 0:
        pytest.fail("this case changes a file's owner and must run as root (CI does); run it as root")


def test_the_cache_directory_and_entries_are_created_private(tmp_path):
    """astpatch creates its directory 0700 and its entries 0600."""
    s = Scenario(tmp_path)
    s.run().assert_patched()
    assert stat.S_IMODE(s.cache.stat().st_mode) == 0o700
    assert [stat.S_IMODE(e.stat().st_mode) for e in s.entries()] == [0o600]


@pytest.mark.parametrize("mode", [0o770, 0o777, 0o720], ids=["mode 770", "mode 777", "mode 720"])
def test_a_directory_others_can_write_is_not_used(tmp_path, mode):
    """A group- or world-writable cache directory."""
    s = Scenario(tmp_path)
    s.run().assert_patched(from_cache=False)
    os.chmod(s.cache, mode)
    run = s.run()
    run.assert_patched(from_cache=False)  # not from the cache, although an entry is there
    assert run.warnings == [f"astpatch: the cache directory {s.cache} is not used because other users can write to it "
                            f"(mode {stat.filemode(stat.S_IFDIR | mode)}). Modules are patched without caching. Make it "
                            "private to your user (chmod 700), or set ASTPATCH_CACHE_DIR to a directory only you can write."]


def test_a_directory_owned_by_someone_else_is_not_used(tmp_path):
    """A cache directory owned by another user."""
    as_root()
    s = Scenario(tmp_path)
    s.run().assert_patched(from_cache=False)
    os.chown(s.cache, OTHER_UID, -1)
    run = s.run()
    run.assert_patched(from_cache=False)
    assert len(run.warnings) == 1
    assert f"is not used because it is owned by uid {OTHER_UID}, not by this user (uid 0)" in run.warnings[0]


@pytest.mark.parametrize("change", ["world-writable", "group-writable", "owned by someone else"])
def test_an_entry_others_could_have_written_is_not_loaded(tmp_path, change):
    """An entry that is group- or world-writable, or owned by another user."""
    s = Scenario(tmp_path)
    s.run().assert_patched(from_cache=False)
    (entry,) = s.entries()
    if change == "world-writable":
        os.chmod(entry, 0o666)
    elif change == "group-writable":
        os.chmod(entry, 0o620)
    else:
        as_root()
        os.chown(entry, OTHER_UID, -1)
    run = s.run()
    run.assert_patched(from_cache=False)
    assert len(run.warnings) == 1
    assert run.warnings[0].startswith(f"astpatch: the cache entry {entry} is not used because ")
    # It was replaced by a private entry that the next process trusts.
    (replaced,) = s.entries()
    assert stat.S_IMODE(replaced.stat().st_mode) == 0o600 and replaced.stat().st_uid == os.geteuid()
    s.run().assert_patched(from_cache=True)
