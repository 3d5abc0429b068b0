"""Cache faults: a damaged or foreign entry is detected, ignored and replaced; never executed. A failure
of the moment (out of stack, out of memory, an unreadable source) is never cached; what a killed writer
leaves is swept; the cache is bounded; other programs' files in the directory are never touched."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scenario import UPSTREAM, Scenario


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
    from astpatch._base.cache import decode, encode

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


# A rule whose edit is AddExceptTypes after a walk as deep as a large module's tree (libcst's visitors
# recurse so), with a working buffer of EDIT_BUFFER bytes; EDIT_INTERRUPT=1 presses Ctrl-C during it.
DEMANDING_RULE = '''
import os, signal
from astpatch import AddExceptTypes, Rule


class Demanding(AddExceptTypes):
    kind = "demanding-add-except-types"

    def apply(self, target):
        if os.environ.get("EDIT_INTERRUPT"):
            # Ctrl-C as an interactive program gets it, whatever the test run inherited (a run started in
            # the background by a shell without job control ignores SIGINT, and so would this process).
            signal.signal(signal.SIGINT, signal.default_int_handler)
            os.kill(os.getpid(), signal.SIGINT)
        bytearray(int(os.environ.get("EDIT_BUFFER", "0")))

        def walk(depth):
            return walk(depth - 1) + 1 if depth else 0

        walk(400)
        return super().apply(target)


RULE = Rule(id="pickler-valueerror", summary="s", module="pickler", target="Pickler.dumps",
            edit=Demanding(add=("ValueError",), converts_to="Bypass"), upstream="test fixture")
'''

# The program imports the target 200 frames short of the recursion limit: enough for the import,
# not for the edit's walk.
DEEP_IMPORT = '''
import inspect
def deep(n):
    if n:
        return deep(n - 1)
    import pickler
deep(sys.getrecursionlimit() - 200 - len(inspect.stack()))
'''


@pytest.mark.parametrize("first_run", [{"after": DEEP_IMPORT}, {"EDIT_BUFFER": str(2**62)}],
                         ids=["deep in the stack", "out of memory"])
def test_a_failure_of_the_environment_is_not_cached(tmp_path, first_run):
    """The first import runs out of stack or memory in the rewrite: upstream's code, one warning, nothing cached."""
    s = Scenario(tmp_path, rule_file=DEMANDING_RULE)
    run = s.run(**first_run)
    assert run["output"] == UPSTREAM and run["patched"] is False and run["outcomes"] == [["failed", False]]
    assert [p.name for p in s.entries()] == []
    cause = "stack (the import happened deep in a stack): RecursionError" if "after" in first_run else "memory: MemoryError"
    (warning,) = run.warnings
    assert warning.startswith(f"astpatch: rule pickler-valueerror was not applied to pickler: the rewrite ran out of {cause}")
    assert "; nothing was cached, so the next process tries again. pickler is imported without this fix." in warning
    s.run().assert_patched(from_cache=False)  # the next process tries again, and succeeds
    s.run().assert_patched(from_cache=True)


def test_an_interrupt_during_the_rewrite_propagates(tmp_path):
    """Ctrl-C during the rewrite: KeyboardInterrupt reaches the program, and nothing is cached."""
    s = Scenario(tmp_path, rule_file=DEMANDING_RULE)
    run = s.run(EDIT_INTERRUPT="1")
    # An uncaught KeyboardInterrupt ends the interpreter by SIGINT, as Ctrl-C does without Python.
    assert run.returncode == -signal.SIGINT and run.stderr.rstrip().endswith("KeyboardInterrupt"), run.stderr
    assert run.warnings == [] and s.entries() == []
    s.run().assert_patched(from_cache=False)


# One rule over two modules: pickler's except clause, and picklehelp's helper.
TWO_MODULE_RULE = '''
from astpatch import AddExceptTypes, ApplyHunks, Change, Hunk, Rule

RULE = Rule(id="pickler-valueerror", summary="s", upstream="test fixture", changes=[
    Change(module="pickler", scope="Pickler.dumps", edit=AddExceptTypes(add=("ValueError",), converts_to="Bypass")),
    Change(module="picklehelp", scope="helper", edit=ApplyHunks(hunks=[Hunk(before=["    return 1"],
                                                                          after=["    return 2"])])),
])
'''

# Reading picklehelp.py fails with EIO in this process (a failing disk, a network filesystem).
EIO_ON_HELPER = '''
import builtins, errno, os
_open = builtins.open
def _failing_open(file, *args, **kwargs):
    if str(file).endswith("picklehelp.py"):
        raise OSError(errno.EIO, os.strerror(errno.EIO), str(file))
    return _open(file, *args, **kwargs)
builtins.open = _failing_open
'''


def test_another_modules_source_that_cannot_be_read_is_not_cached(tmp_path):
    """A rule over two modules, and the other module's source fails to read (EIO): nothing cached."""
    s = Scenario(tmp_path, rule_file=TWO_MODULE_RULE)
    helper = s.write("picklehelp", "def helper():\n    return 1\n")
    run = s.run(after=EIO_ON_HELPER)
    assert run["output"] == UPSTREAM and run["outcomes"] == [["failed", False]]
    assert s.entries() == []
    (warning,) = run.warnings
    assert (f"not applied to pickler, picklehelp: the source of picklehelp cannot be read ([Errno 5] Input/output "
            f"error: '{helper}'); nothing was cached, so the next process tries again.") in warning
    s.run().assert_patched(from_cache=False)
    s.run().assert_patched(from_cache=True)


def other_programs_files(cache) -> dict[str, bytes | None]:  # type: ignore[no-untyped-def]
    """Files that other programs keep in a shared cache directory, some with names close to astpatch's;
    by name, their contents (None: a directory)."""
    files = {"notes.txt": b"mine", "build.tmp": b"a build's", ".report.123.456.tmp": b"another writer's",
             "x.astpatch": b"not a name astpatch makes", "pickler-notahexdigest00.astpatch": b"nor this",
             "data-0123456789abcdef.json": b"{}", ".notes.txt.1.2.tmp": b"a temporary file of notes.txt"}
    for name, data in files.items():
        (cache / name).write_bytes(data)
    (cache / "work.tmp").mkdir()
    (cache / "work.tmp" / "inside").write_bytes(b"x")
    return {**files, "work.tmp": None}


def unchanged(cache, files) -> bool:  # type: ignore[no-untyped-def]
    return all((cache / name).is_dir() if data is None else (cache / name).read_bytes() == data
               for name, data in files.items()) and (cache / "work.tmp" / "inside").read_bytes() == b"x"


def orphan(cache, pid: int, name: str = "pickler-0123456789abcdef.astpatch", idle: float = 120) -> Path:  # type: ignore[no-untyped-def]
    """A temporary file of astpatch's, written by `pid`, last written to `idle` seconds ago."""
    path = cache / f".{name}.{pid}.139872.tmp"
    path.write_bytes(b"astpatch" + bytes(4096))
    os.utime(path, (time.time() - idle, time.time() - idle))
    return path


def dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


@pytest.mark.parametrize("command", [("clear",), ("prune", "--max-size", "0")], ids=["cache clear", "cache prune"])
def test_a_shared_cache_directory_keeps_other_programs_files(scenario, command):
    """A cache directory shared with other programs: clear and prune remove astpatch's files only."""
    cache = scenario.cache
    ours = [*scenario.entries(), *cache.glob("entry-points-*.index"), orphan(cache, dead_pid())]
    assert len(ours) == 3
    theirs = other_programs_files(cache)
    result = scenario.astpatch("cache", *command)
    assert result.returncode == 0 and result.stderr == "", (result.stdout, result.stderr)
    assert [p for p in ours if p.exists()] == []
    assert unchanged(cache, theirs)
    assert sorted(p.name for p in cache.iterdir()) == sorted(theirs)


def test_temporary_files_of_a_killed_writer_are_swept_at_the_next_write(tmp_path):
    """A writer killed (SIGKILL) between writing its temporary file and renaming it: swept by a later write."""
    s = Scenario(tmp_path)
    kill_at_rename = ("import os, signal\n_replace = os.replace\n"
                      "os.replace = lambda a, b: os.kill(os.getpid(), signal.SIGKILL) if str(b).endswith('.astpatch') "
                      "else _replace(a, b)\n")
    killed = s.run(before=kill_at_rename)
    assert killed.returncode == -signal.SIGKILL
    (left,) = [p for p in s.cache.iterdir() if p.name.endswith(".tmp")]
    assert left.name.startswith(".pickler-") and left.stat().st_size > 0
    os.utime(left, (time.time() - 120, time.time() - 120))  # killed two minutes ago
    theirs = other_programs_files(s.cache)
    writing = orphan(s.cache, os.getpid())  # a live writer's (this process), idle for two minutes
    just_died = orphan(s.cache, dead_pid(), idle=5)  # a writer on another host may be that pid, at work
    s.run().assert_patched(from_cache=False)
    assert not left.exists()
    assert writing.exists() and just_died.exists() and unchanged(s.cache, theirs)
    # A hit never sweeps: only a write does.
    later = orphan(s.cache, dead_pid(), name=s.entries()[0].name)
    s.run().assert_patched(from_cache=True)
    assert later.exists()


def test_the_cache_is_bounded_by_size(scenario):
    """Past 256 MiB of astpatch's files, a write evicts the least recently used; other files do not count."""
    cache = scenario.cache
    now = time.time()
    (entry,) = scenario.entries()
    entry.unlink()  # the next run writes it again
    sizes = {"old-0123456789abcdef.astpatch": (200, 30), "recent-0123456789abcdef.astpatch": (200, 1),
             "big-0123456789abcdef.json": (300, 60)}  # another program's
    for name, (mebibytes, days) in sizes.items():
        with open(cache / name, "wb") as f:
            f.truncate(mebibytes * 2**20)  # sparse: costs no disk
        os.utime(cache / name, (now - days * 86400, now - days * 86400))
    scenario.run().assert_patched(from_cache=False)
    assert sorted(p.name for p in cache.iterdir()) == sorted(
        [entry.name, "recent-0123456789abcdef.astpatch", "big-0123456789abcdef.json",
         *(p.name for p in cache.glob("entry-points-*")), *(p.name for p in cache.glob("rule-files-*"))])
