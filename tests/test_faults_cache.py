"""Cache faults: a damaged or foreign entry is detected, ignored and replaced; never executed."""

from __future__ import annotations

import os

import pytest

from scenario import Scenario


@pytest.fixture
def scenario(tmp_path):
    s = Scenario(tmp_path)
    s.run().assert_patched(from_cache=False)
    return s


def damage(entry, how: str) -> None:
    data = entry.read_bytes()
    if how == "truncated":
        entry.write_bytes(data[: len(data) // 2])
    elif how == "random bytes":
        entry.write_bytes(os.urandom(len(data)))
    elif how == "empty":
        entry.write_bytes(b"")
    elif how == "body altered, key intact":
        entry.write_bytes(data[:-64] + bytes(b ^ 0x5A for b in data[-64:]))
    elif how == "a directory":
        entry.unlink()
        entry.mkdir()


@pytest.mark.parametrize("how", ["truncated", "random bytes", "empty", "body altered, key intact", "a directory"])
def test_a_damaged_entry_is_ignored_with_one_message_and_replaced(scenario, how):
    """A truncated, random, empty, altered entry, or a directory in its place."""
    (entry,) = scenario.entries()
    damage(entry, how)
    run = scenario.run()
    run.assert_patched(from_cache=False)
    assert len(run.warnings) == 1 and run.warnings[0].startswith(f"astpatch: ignored the cache entry {entry} because ")
    assert run.warnings[0].endswith("; it will be rewritten.")
    scenario.run().assert_patched(from_cache=True)  # replaced by a good entry


def forge(entry, field: str, value) -> None:  # type: ignore[no-untyped-def]
    """Rewrite the recorded key of a valid entry, with a valid checksum: a 'foreign' entry."""
    from astpatch._engine.cache import decode, encode

    key, decoded = decode(entry.read_bytes())
    decoded.code = bytes(decoded.code)
    entry.write_bytes(encode(key.replace(**{field: value}), decoded))


@pytest.mark.parametrize("field, value, what", [
    ("astpatch", "0.0.1", "another astpatch version"),
    ("magic", b"\x00\x00\r\n", "another Python's bytecode magic number"),
    ("source_hash", b"12345678", "another source hash"),
], ids=["another astpatch version", "another Python version", "other source"])
def test_an_entry_recording_another_key_is_never_executed(scenario, field, value, what):
    """An entry from another astpatch or Python version, or for other source, at this key's name."""
    (entry,) = scenario.entries()
    forge(entry, field, value)
    run = scenario.run(ASTPATCH_LOG="debug")
    run.assert_patched(from_cache=False)
    assert f"astpatch: cache entry {entry} records another key; replacing it" in run.stderr
    assert run.warnings == []
    scenario.run().assert_patched(from_cache=True)


def test_an_entry_of_another_format_is_replaced(scenario):
    """An entry written by a future cache format."""
    (entry,) = scenario.entries()
    data = entry.read_bytes()
    entry.write_bytes(data[:8] + bytes([99]) + data[9:])
    scenario.run().assert_patched(from_cache=False)
    scenario.run().assert_patched(from_cache=True)
