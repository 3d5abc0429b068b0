"""Engines that start their own worker processes, under `astpatch run`: torchrun's ranks, a spawn
pool's workers, and Ray's workers (in a cluster the driver starts, and in one it joins).

Real torch 2.10.0 on the CPU with the shipped rules: every worker process proves that it runs the
patched `FxGraphCachePickler.dumps` (a ValueError while pickling a cache key becomes a cache bypass,
where torch 2.10 lets it escape) and reports `astpatch.applied()`. No program calls install(): the
engines' processes get astpatch from the environment, as `astpatch run` arranges. Slow tier: run by
`python3 tools/test.py` in the torch 2.10.0 environment (which has Ray). Every program runs in its
own process group, killed when it outlives its timeout, so a stuck engine fails the test.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import pytest

import astpatch

from conftest import ROOT, require_torch
from torch_probes import inductor_env

pytestmark = pytest.mark.torch210
RULE_ID = "torch-fxgraph-cache-key-valueerror"
PYBIND11_RULE = "torch-fxgraph-cache-key-pybind11-runtimeerror"
KEY_RULE = "torch-compile-caches-key-by-rules"
PATCHED_OUTCOMES = sorted([rule, "applied"] for rule in (PYBIND11_RULE, KEY_RULE, RULE_ID))
TIMEOUT = 900  # seconds: torch imported by several processes at once on a small machine


@pytest.fixture(autouse=True, scope="module")
def real_torch_210():
    require_torch("2.10.0")


def astpatch_run(*command: str) -> list[str]:
    """`astpatch run COMMAND ARGS`: the command, found on PATH, with every Python process it starts patched."""
    return [sys.executable, "-m", "astpatch", "run", *command]


# What a worker process runs: torch's FX graph pickler on a key that holds a reference cycle.
PROBE = r'''
def patch_report():
    """This process: what dumps raised on a cyclic key, and astpatch as installed at start-up (or not)."""
    import logging, os, sys
    import torch
    from torch._inductor.codecache import FxGraphCachePickler

    logging.getLogger("torch._inductor.codecache").setLevel(logging.ERROR)  # "Failed to pickle cache key"
    cycle = []
    cycle.append(cycle)
    try:
        FxGraphCachePickler(torch.fx.symbolic_trace(torch.nn.Identity())).dumps({"config": cycle})
        raised = None
    except Exception as error:
        raised = [type(error).__name__, type(error.__cause__).__name__ if error.__cause__ else None]
    installed = sys.modules.get("astpatch")  # only the start-up install imports it here
    return {
        "pid": os.getpid(),
        "raised": raised,
        "astpatch": os.path.dirname(installed.__file__) if installed else None,
        "outcomes": sorted([o.rule_id, o.status] for o in installed.applied()) if installed else None,
        "cache_dir": os.environ.get("ASTPATCH_CACHE_DIR"),
    }

'''


def engine_env(tmp_path: Path) -> dict[str, str]:
    """No outside astpatch or inductor settings, caches in tmp_path, this interpreter's scripts first on PATH
    (`python`, `torchrun`, `ray` are this environment's), and the astpatch under test for every process."""
    env = inductor_env(str(tmp_path / "inductor"))
    env["ASTPATCH_CACHE_DIR"] = str(tmp_path / "astpatch")
    env["PATH"] = os.pathsep.join([sysconfig.get_path("scripts"), env.get("PATH", "")])
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    return env


def start(command: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen:
    """`command` in a new process group (its own session), its output in `log`."""
    with open(log, "wb") as out:
        return subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def end(process: subprocess.Popen) -> None:
    """Kill what is left of the process group of `process`."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def run(command: list[str], env: dict[str, str], cwd: Path, timeout: float = TIMEOUT) -> str:
    """Run `command` to its end (killed with its process group after `timeout`); it must succeed. Its output."""
    log = cwd / f"output-{time.monotonic_ns()}.txt"
    process = start(command, env, cwd, log)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{command} still running after {timeout}s, killed:\n{log.read_text(errors='replace')[-6000:]}")
    finally:
        end(process)  # and any process it left behind in its group
    output = log.read_text(errors="replace")
    assert process.returncode == 0, f"{command}: exit {process.returncode}\n{output[-6000:]}"
    return output


def this_astpatch() -> str:
    return str(Path(astpatch.__file__).resolve().parent)


def assert_patched(report: dict, env: dict[str, str]) -> None:
    """A worker that ran the astpatch under test, installed at its start-up with the test's settings."""
    assert report["raised"] == ["BypassFxGraphCache", "ValueError"], report
    assert report["outcomes"] == PATCHED_OUTCOMES, report
    assert report["astpatch"] is not None and str(Path(report["astpatch"]).resolve()) == this_astpatch(), report
    assert report["cache_dir"] == env["ASTPATCH_CACHE_DIR"], report


TRAIN = PROBE + r'''
import json, os, sys
import torch
import torch.distributed as dist
import torch._inductor.config as config
from torch._dynamo.utils import counters

dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
config.fx_graph_cache = True
config.force_disable_caches = False
cycle = []
cycle.append(cycle)
config.aot_inductor.metadata = {"cycle": cycle}  # in the FX graph cache key (unused on the CPU): pickling it raises ValueError

def f(x):
    return torch.sin(x) * 2 + torch.cos(x)

x = torch.full((16,), float(rank + 1))
out = torch.compile(f, backend="inductor")(x)  # on torch 2.10 without the rule: BackendCompilerFailed (ValueError)
total = out.clone()
dist.all_reduce(total)
report = patch_report()
report.update(
    rank=rank, world=world,
    compiled_equals_eager=bool(torch.allclose(out, f(x))),
    all_reduce_equals_eager=bool(torch.allclose(total, sum(f(torch.full((16,), float(r + 1))) for r in range(world)))),
    inductor=dict(counters["inductor"]),
)
with open(os.path.join(sys.argv[1], f"rank{rank}.json"), "w") as file:
    json.dump(report, file)
dist.barrier()
dist.destroy_process_group()
'''


def test_torchrun_ranks_compile_with_the_patched_pickler(tmp_path):
    """`astpatch run torchrun --nproc-per-node 2 --standalone train.py`: both ranks (gloo, CPU) are patched
    at start-up and compile through the patched dumps: the cyclic key bypasses the FX graph cache."""
    (tmp_path / "train.py").write_text(TRAIN)
    results = tmp_path / "ranks"
    results.mkdir()
    env = engine_env(tmp_path)
    run(astpatch_run("torchrun", "--nproc-per-node", "2", "--standalone", "train.py", str(results)), env, tmp_path)

    reports = [json.loads((results / f"rank{rank}.json").read_text()) for rank in range(2)]
    assert [(r["rank"], r["world"]) for r in reports] == [(0, 2), (1, 2)]
    assert reports[0]["pid"] != reports[1]["pid"]
    for report in reports:
        assert_patched(report, env)
        assert report["compiled_equals_eager"] is True and report["all_reduce_equals_eager"] is True
        assert report["inductor"].get("fxgraph_cache_bypass") == 1, report["inductor"]


POOL_DRIVER = PROBE + r'''
import json, multiprocessing, os, sys

def report_once(queue):
    """The pool's initializer: it runs once in every worker."""
    queue.put(patch_report())

if __name__ == "__main__":
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    with context.Pool(3, initializer=report_once, initargs=(queue,)) as pool:
        reports = [queue.get(timeout=600) for _ in range(3)]
        works = pool.map(abs, [-1, -2, -3]) == [1, 2, 3]
    with open(sys.argv[1], "w") as file:
        json.dump({"driver": os.getpid(), "workers": reports, "pool_works": works}, file)
'''


def test_every_worker_of_a_spawn_pool_is_patched(tmp_path):
    """`astpatch run python driver.py`, the driver starting a multiprocessing pool of 3 spawned workers:
    each worker is patched at its start-up."""
    (tmp_path / "driver.py").write_text(POOL_DRIVER)
    env = engine_env(tmp_path)
    run(astpatch_run("python", "driver.py", str(tmp_path / "report.json")), env, tmp_path)

    report = json.loads((tmp_path / "report.json").read_text())
    assert report["pool_works"] is True
    pids = {worker["pid"] for worker in report["workers"]}
    assert len(pids) == 3 and report["driver"] not in pids
    for worker in report["workers"]:
        assert_patched(worker, env)


# Ray: remote tasks and an actor report from their worker processes. `join` runs two jobs in a
# cluster started before the driver (its workers are started by its raylet, which never had the
# driver's environment): one as plain `ray.init(address="auto")`, one with the driver's astpatch
# environment passed on, as the README says.
RAY_DRIVER = PROBE + r'''
import json, os, sys
import ray
import astpatch

@ray.remote
def task():
    return patch_report()

@ray.remote
class Actor:
    def report(self):
        return patch_report()

def reports():
    actor = Actor.remote()
    return {"tasks": ray.get([task.remote() for _ in range(2)], timeout=600),
            "actor": ray.get(actor.report.remote(), timeout=600)}

result = {"driver": os.getpid()}
if sys.argv[2] == "local":
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    result["patched"] = reports()
else:
    ray.init(address="auto", log_to_driver=False)
    result["plain"] = {"tasks": ray.get([task.remote()], timeout=600)}
    ray.shutdown()
    ray.init(address="auto", log_to_driver=False, runtime_env={"env_vars": astpatch.child_environment()})
    result["patched"] = reports()
ray.shutdown()
with open(sys.argv[1], "w") as file:
    json.dump(result, file)
'''


def ray_workers(result: dict) -> list[dict]:
    workers = [*result["tasks"], result["actor"]]
    assert len(workers) == 3
    return workers


def test_every_worker_of_a_local_ray_cluster_is_patched(tmp_path):
    """`astpatch run python driver.py`, the driver starting a local Ray cluster (`ray.init()`): its
    workers inherit the driver's environment, so the tasks' and the actor's processes are patched."""
    (tmp_path / "driver.py").write_text(RAY_DRIVER)
    env = engine_env(tmp_path)
    with tempfile.TemporaryDirectory(prefix="ray-") as ray_tmp:  # short: Ray's socket paths must fit
        env["RAY_TMPDIR"] = ray_tmp
        run(astpatch_run("python", "driver.py", str(tmp_path / "report.json"), "local"), env, tmp_path)

    result = json.loads((tmp_path / "report.json").read_text())
    for worker in ray_workers(result["patched"]):
        assert worker["pid"] != result["driver"]
        assert_patched(worker, env)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(text: str, log: Path, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"`ray start` did not start a cluster:\n{log.read_text(errors='replace')[-6000:]}")
        time.sleep(1)


def test_ray_workers_of_a_cluster_the_driver_joins_are_patched_through_runtime_env(tmp_path):
    """A cluster started before the driver (`ray start --head`, its own environment), joined by
    `astpatch run python driver.py` with `ray.init(address="auto")`: the raylet's workers do not get the
    driver's environment, so a plain job's worker is not patched; a job given
    `runtime_env={"env_vars": astpatch.child_environment()}` has every worker patched, with the driver's settings."""
    (tmp_path / "driver.py").write_text(RAY_DRIVER)
    env = engine_env(tmp_path)
    cluster_env = {k: v for k, v in env.items() if not k.startswith("ASTPATCH_")}
    with tempfile.TemporaryDirectory(prefix="ray-") as ray_tmp:
        env["RAY_TMPDIR"] = cluster_env["RAY_TMPDIR"] = ray_tmp
        log = tmp_path / "cluster.txt"
        cluster = start(["ray", "start", "--head", "--block", "--num-cpus", "2", "--include-dashboard", "false",
                         "--port", str(free_port()), "--disable-usage-stats"], cluster_env, tmp_path, log)
        try:
            wait_for("Ray runtime started", log, cluster, timeout=300)
            run(astpatch_run("python", "driver.py", str(tmp_path / "report.json"), "join"), env, tmp_path)
        finally:
            cluster.terminate()  # `ray start --block` stops the cluster's processes when it ends
            try:
                cluster.wait(60)
            except subprocess.TimeoutExpired:
                pass
            end(cluster)

    result = json.loads((tmp_path / "report.json").read_text())
    [plain] = result["plain"]["tasks"]
    assert plain["raised"] == ["ValueError", None] and plain["astpatch"] is None  # torch 2.10's own dumps
    for worker in ray_workers(result["patched"]):
        assert worker["pid"] != result["driver"]
        assert_patched(worker, env)


def test_the_readme_gives_ray_workers_the_astpatch_environment():
    """The way the test above passes the environment on is the one the README documents."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    documented = re.search(r"""runtime_env\s*=\s*\{\s*["']env_vars["']\s*:\s*astpatch\.child_environment\(\)\s*\}""",
                           readme)
    assert documented, "README.md: the Ray section should show runtime_env={\"env_vars\": astpatch.child_environment()}"
