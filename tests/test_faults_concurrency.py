"""Concurrency: many processes on an empty cache, and threads importing at once."""

from __future__ import annotations

import shutil
import subprocess

from scenario import PATCHED, Run, Scenario

PROCESSES = 16
ROUNDS = 3


def test_sixteen_processes_at_once_on_an_empty_cache(tmp_path):
    """16 processes import the target at once with an empty cache, three times over."""
    s = Scenario(tmp_path)
    for _ in range(ROUNDS):
        shutil.rmtree(s.cache, ignore_errors=True)
        started = [subprocess.Popen(s.command(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=s.env())
                   for _ in range(PROCESSES)]
        runs = []
        for process in started:
            out, err = process.communicate(timeout=300)  # a deadlock fails here instead of hanging
            runs.append(Run(subprocess.CompletedProcess(process.args, process.returncode, out, err)))
        for run in runs:
            assert run["patched"] is True and run["output"] == PATCHED
            assert run.warnings == []
        # No torn file and no leftover temporary file: one complete entry that the next process uses.
        names = [p.name for p in s.cache.iterdir()]
        assert len([n for n in names if n.endswith(".astpatch")]) == 1
        assert [n for n in names if n.endswith(".tmp")] == []
        s.run().assert_patched(from_cache=True)


THREADS = r'''
import importlib, json, sys, threading
import astpatch
astpatch.install(rules=[{rule!r}], cache_dir={cache!r})
names = ["pickler", "json.decoder", "csv", "decimal", "email.mime.text", "pickler", "fractions", "pickler"]
barrier = threading.Barrier(len(names))
results = {{}}
def load(i, name):
    barrier.wait()
    results[i] = importlib.import_module(name)
threads = [threading.Thread(target=load, args=(i, n)) for i, n in enumerate(names)]
for t in threads:
    t.start()
for t in threads:
    t.join(120)
alive = [t.name for t in threads if t.is_alive()]
pickler = sys.modules["pickler"]
print(json.dumps({{"alive": alive, "loaded": len(results), "same": len({{id(results[i]) for i in (0, 5, 7)}}),
                  "patched": "ValueError" in pickler.Pickler.dumps.__code__.co_names,
                  "outcomes": [o.status for o in astpatch.applied()]}}))
'''


def test_threads_importing_the_target_and_other_modules_at_once(tmp_path):
    """8 threads import the target (three of them) and other modules at the same moment."""
    s = Scenario(tmp_path)
    for _ in range(ROUNDS):
        shutil.rmtree(s.cache, ignore_errors=True)
        data = s.python(THREADS.format(rule=str(s.rule), cache=str(s.cache)), timeout=300).json()
        assert data == {"alive": [], "loaded": 8, "same": 1, "patched": True, "outcomes": ["applied"]}
