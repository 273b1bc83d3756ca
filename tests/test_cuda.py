"""sombench on CUDA (issue 29): every algorithm's update and acting on the GPU, eager and compiled with CUDA
graphs (`--compile`, mode "reduce-overhead"), checkpoints that cross between CUDA and the CPU, and a run
SIGKILLed on CUDA and resumed there giving the uninterrupted run's eval.csv.

Every test that needs a GPU is marked `cuda` and skips, with the reason, where `torch.cuda.is_available()`
is False (this project's CPU machines and CI): `pytest -m cuda tests/test_cuda.py` is what
`make gpu-check` (scripts/gpu_check.py) runs on a GPU machine. Each is small (16-unit networks, a few
hundred env steps) so the whole file runs in a couple of minutes on one GPU.

Compiled = eager within rel 1e-3, abs 1e-4 (metrics, parameters and actions), the tolerance
tests/test_compile.py holds the CPU's compiled path to; random draws inside compiled code use eager's
generator (algorithms/common/compile.py), so the two agree draw for draw.

The two tests at the end are not marked `cuda` and run everywhere (CI included): `make gpu-check` on a
machine without a GPU says so and exits 0 at once, and the `cuda` marker is registered and selects the
GPU tests.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import algorithms
from algorithms.common import compile as compile_mod
from conftest import invoke, run_path, tiny_run_args
from killable_env import ENV_ID
from sombench.envs import describe_env
from sombench.measure.latency import random_batch
from sombench.runs import checkpoint, store
from sombench.runs.spec import RunSpec
from sombench.train.trainer import run_seed

ROOT = Path(__file__).resolve().parent.parent
HAS_CUDA = torch.cuda.is_available()
NO_CUDA = ("CUDA is not available (torch.cuda.is_available() is False: no GPU, or a CPU build of torch); "
           "run `make gpu-check` on a GPU machine")
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason=NO_CUDA)
CUDA = torch.device("cuda")
CPU = torch.device("cpu")

ALGOS = sorted(n for n in algorithms.load_all() if not n.startswith("test-"))
OBS, ACT = 3, 2
RTOL, ATOL = 1e-3, 1e-4
"""compiled = eager within these (as tests/test_compile.py on the CPU)."""
UPDATES = 6
"""Updates compared: with a policy delay of 2 each schedule phase's graph runs 3 times, so it is warmed up,
recorded and then replayed as a CUDA graph at least once (cudagraph trees record on the second call)."""


# -- building small algorithms ------------------------------------------------------------------
def small_fields(cls: type) -> dict:
    """tests/test_compile.py's small config: 16-unit networks, batch 8, delays of 2, short unrolled loops."""
    fields = {f.name for f in dataclasses.fields(cls.Config)}
    small = {"hidden_sizes": (16, 16)}
    if cls.name != "ppo":
        small["batch_size"] = 8
    for delay in ("policy_delay", "alpha_delay", "target_delay"):
        small[delay] = 2
    small.update(diffusion_steps=4, action_gradient_steps=3)
    return {k: v for k, v in small.items() if k in fields}


def build(name: str, device: torch.device, seed: int = 0):
    cls = algorithms.load_all()[name]
    torch.manual_seed(seed)
    return cls(OBS, ACT, dataclasses.replace(cls.Config(), **small_fields(cls)), device)


def batch_for(algo, name: str, device: torch.device):
    return random_batch(OBS, ACT, 64 if name == "ppo" else algo.config.batch_size, device)


def run_updates(algo, batch, n: int) -> list[dict[str, float]]:
    """`n` updates, each seeded; the metric tensors of all of them are kept until the end before being read,
    as the harness's metric window keeps them (a CUDA graph's replay must not overwrite an earlier output)."""
    kept = []
    for i in range(n):
        torch.manual_seed(100 + i)
        kept.append(algo.update(batch))
    return [{k: float(v) for k, v in metrics.items()} for metrics in kept]


def modules(algo) -> dict[str, nn.Module]:
    return {k: v for k, v in vars(algo).items() if isinstance(v, nn.Module)}


def flat_state(state, prefix: str = ""):
    """(path, value) of every tensor and number in a nested state dict, in order."""
    if isinstance(state, dict):
        for key, value in state.items():
            yield from flat_state(value, f"{prefix}/{key}")
    elif isinstance(state, (list, tuple)):
        for i, value in enumerate(state):
            yield from flat_state(value, f"{prefix}/{i}")
    else:
        yield prefix, state


def assert_same_state(a: dict, b: dict) -> None:
    """Two algorithms' state dicts hold the same keys and exactly the same values, whatever their devices."""
    fa, fb = list(flat_state(a)), list(flat_state(b))
    assert [k for k, _ in fa] == [k for k, _ in fb]
    for (key, x), (_, y) in zip(fa, fb):
        if isinstance(x, torch.Tensor):
            assert isinstance(y, torch.Tensor) and torch.equal(x.cpu(), y.cpu()), key
        else:
            assert x == y, key


def assert_action(action, act_dim: int) -> None:
    assert isinstance(action, np.ndarray) and action.shape == (act_dim,), action
    assert np.all(np.isfinite(action)) and np.all(np.abs(action) <= 1 + 1e-6), action


# -- every algorithm on CUDA ----------------------------------------------------------------------
@pytest.mark.cuda
@needs_cuda
def test_cuda_is_used_by_auto_and_can_compile():
    """`--device auto` picks the GPU, and CUDA inductor (Triton) is there, so --compile builds CUDA graphs
    instead of falling back to eager (the tests below would then fail on the fallback's warning)."""
    from sombench.app.common import resolve_device

    assert resolve_device("auto") == "cuda"
    assert compile_mod.compile_mode(CUDA) == "reduce-overhead"
    assert compile_mod.compile_support(CUDA) is None


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("name", ALGOS)
def test_update_and_act_on_cuda(name):
    """Eager on CUDA: the networks live on the GPU, updates give finite metrics, acting gives an action in
    [-1, 1] from a numpy observation (deterministic, stochastic and the training loop's explore)."""
    algo = build(name, CUDA)
    for key, module in modules(algo).items():
        assert all(p.device.type == "cuda" for p in module.parameters()), key
    for metrics in run_updates(algo, batch_for(algo, name, CUDA), 3):
        assert metrics and all(np.isfinite(v) for v in metrics.values()), metrics
    obs = np.linspace(-1, 1, OBS).astype(np.float32)
    for deterministic in (True, False):
        assert_action(algo.act(obs, deterministic), ACT)
    assert_action(algo.explore(obs).action, ACT)


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("name", ALGOS)
def test_compiled_with_cuda_graphs_matches_eager(name):
    """--compile on CUDA (CUDA graphs): every compiled method builds (no fallback, no warning) and gives the
    eager instance's metrics, parameters and actions within rel 1e-3, abs 1e-4, through graph replays."""
    from torch._dynamo.utils import counters

    skips_before = counters["inductor"]["cudagraph_skips"]
    eager, compiled = build(name, CUDA), build(name, CUDA)
    names = compiled.compile(warn=lambda m: pytest.fail(m))
    assert names and set(names) == set(type(compiled).compiled_methods)
    batch = batch_for(eager, name, CUDA)

    m_eager, m_compiled = run_updates(eager, batch, UPDATES), run_updates(compiled, batch, UPDATES)
    for i, (a, b) in enumerate(zip(m_eager, m_compiled)):
        assert a.keys() == b.keys()
        for key in a:
            assert b[key] == pytest.approx(a[key], rel=RTOL, abs=ATOL), f"update {i}: {key}"
    for (key, p), q in zip(eager.state_dict().items(), compiled.state_dict().values()):
        if isinstance(p, torch.Tensor):
            assert torch.allclose(p, q, rtol=RTOL, atol=ATOL), key
    obs = np.linspace(-1, 1, OBS).astype(np.float32)
    for deterministic in (True, False):
        for i in range(3):  # warm-up, recording, replay
            torch.manual_seed(7 + i)
            a = eager.act(obs, deterministic)
            torch.manual_seed(7 + i)
            b = compiled.act(obs, deterministic)
            np.testing.assert_allclose(b, a, rtol=RTOL, atol=ATOL, err_msg=f"act(deterministic={deterministic}), call {i}")
    for method in names:
        wrapped = getattr(compiled, method)
        assert isinstance(wrapped, compile_mod.CompiledMethod) and wrapped.cuda_graphs, method
        assert wrapped.failed is None, f"{method}: {wrapped.failed}"
    # not a failure, but worth knowing: graphs that inductor ran without CUDA graphs (e.g. for mutated inputs)
    print(f"{name}: graphs run without CUDA graphs: {counters['inductor']['cudagraph_skips'] - skips_before}")


def tiny_pairs(name: str) -> tuple[str, ...]:
    """--set pairs that make `name` train in seconds on Pendulum (paper settings otherwise)."""
    cls = algorithms.load_all()[name]
    fields = {f.name for f in dataclasses.fields(cls.Config)}
    wanted = {"hidden_sizes": "16,16", "diffusion_steps": "4", "action_gradient_steps": "3", "buffer_size": "10000"}
    if name == "ppo":
        wanted.update(batch_size="100", policy_iters="2", value_iters="2")
    else:
        wanted.update(batch_size="16", warmup_steps="100")
    return tuple(f"{k}={v}" for k, v in wanted.items() if k in fields)


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("name", ALGOS)
def test_train_on_cuda_and_move_checkpoints_between_devices(name, tmp_path):
    """A short run on CUDA through the trainer (explore, observe, train_step, evaluation, checkpoint) finishes;
    its checkpoint, written on CUDA, loads into the algorithm on the CPU with every value equal, and one
    written from the CPU loads back into it on CUDA, equal again; both copies act."""
    spec = RunSpec(algo=name, env_id="Pendulum-v1", seed=0, total_steps=300, eval_every=300, eval_episodes=1,
                   log_every=100, device="cuda", set_pairs=tiny_pairs(name))
    outcome = run_seed(spec, tmp_path)
    assert outcome["status"] == "done", outcome
    assert np.isfinite(outcome["final_return"])
    info = describe_env("Pendulum-v1")
    cls = algorithms.load_all()[name]
    path = store.RunFiles(run_path(tmp_path, "Pendulum-v1", name)).checkpoint

    on_cuda = cls(info.obs_dim, info.act_dim, spec.config(), CUDA)
    on_cuda.load_state_dict(checkpoint.load(path, CUDA)["algo"])
    on_cpu = cls(info.obs_dim, info.act_dim, spec.config(), CPU)
    on_cpu.load_state_dict(checkpoint.load(path, CPU)["algo"])
    assert_same_state(on_cpu.state_dict(), on_cuda.state_dict())

    cpu_path = tmp_path / "written-on-cpu.pt"
    checkpoint.save(cpu_path, {"algo": on_cpu.state_dict()})
    back = cls(info.obs_dim, info.act_dim, spec.config(), CUDA)
    back.load_state_dict(checkpoint.load(cpu_path, CUDA)["algo"])
    assert_same_state(on_cpu.state_dict(), back.state_dict())
    obs = np.zeros(info.obs_dim, np.float32)
    for algo in (on_cpu, back):
        assert_action(algo.act(obs, deterministic=True), info.act_dim)


# -- runs through the CLI on CUDA ------------------------------------------------------------------
def run_args(results: Path, device: str, steps: int = 800, extra: tuple[str, ...] = (), env: str = ENV_ID) -> list[str]:
    """tests/conftest.py's tiny SAC run on `device` (eval and checkpoint every 200 steps)."""
    args = tiny_run_args(results, steps=steps, env=env, extra=extra)
    args[args.index("--device") + 1] = device
    return args


def read(run: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(run / name)


def state_of(run: Path) -> str:
    """state.json and error.log of a run, for assertion messages."""
    error = run / "error.log"
    return json.dumps(store.read_state(run)) + (f"\n{error.read_text()[-2000:]}" if error.exists() else "")


KILL_AFTER = 850
"""Env steps in the process, evaluation episodes included (1 episode of 200 steps every 200 training steps):
850 end at training step ~450, after the checkpoint at 400."""
CHECKPOINT_AT = 400


def killed_run(results: Path, device: str) -> Path:
    """Start the tiny run of 800 steps on `device` in a child process that SIGKILLs itself after the
    checkpoint at step 400 (tests/killable_env.py); return its run folder."""
    code = f"import killable_env; from sombench.cli.main import main; main({run_args(results, device)!r})"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "SOMBENCH_KILL_AFTER_STEPS": str(KILL_AFTER)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    run = run_path(results, ENV_ID, "sac", 0)
    assert store.effective_state(run)["state"] == "interrupted"
    assert int(checkpoint.load(store.RunFiles(run).checkpoint)["step"]) == CHECKPOINT_AT
    return run


def assert_resumed(run: Path, before: dict[str, pd.DataFrame], steps: int = 800) -> None:
    """The rerun finished the run from its checkpoint: done, every row once, and the rows up to the checkpoint
    are the killed process's own (wall_s included: a restart from scratch would have recomputed them)."""
    assert store.read_state(run)["state"] == "done", state_of(run)
    for name, old in before.items():
        frame = read(run, name)
        assert frame["env_step"].is_monotonic_increasing and frame["env_step"].is_unique, name
        kept = old[old["env_step"] <= CHECKPOINT_AT].reset_index(drop=True)
        pd.testing.assert_frame_equal(frame[frame["env_step"] <= CHECKPOINT_AT].reset_index(drop=True), kept, check_exact=True)
    ev = read(run, "eval.csv")
    assert list(ev["env_step"]) == list(range(200, steps + 1, 200))
    assert np.all(np.isfinite(ev["return_mean"]))
    assert int(checkpoint.load(store.RunFiles(run).checkpoint)["step"]) == steps


@pytest.fixture(scope="module")
def clean_cuda_run(tmp_path_factory) -> Path:
    """An uninterrupted tiny run of 800 steps on CUDA (the killable env, never killed: plain Pendulum)."""
    results = tmp_path_factory.mktemp("clean-cuda")
    assert invoke(run_args(results, "cuda")) == 0
    return run_path(results, ENV_ID, "sac", 0)


@pytest.mark.cuda
@needs_cuda
def test_same_seed_same_numbers_on_cuda_and_auto_is_cuda(clean_cuda_run, tmp_path):
    """Two runs of the same seed on the GPU (one asked for as --device auto) give the same evaluations and
    training metrics: the precondition of the resume test below."""
    assert invoke(run_args(tmp_path, "auto")) == 0
    run = run_path(tmp_path, ENV_ID, "sac", 0)
    config = store.read_json(store.RunFiles(run).config)
    assert config["device"] == "cuda" and config["provenance"]["hardware"]["gpu"], config["device"]
    pd.testing.assert_series_equal(read(run, "eval.csv")["return_mean"], read(clean_cuda_run, "eval.csv")["return_mean"])
    pd.testing.assert_frame_equal(read(run, "train.csv").drop(columns="wall_s"), read(clean_cuda_run, "train.csv").drop(columns="wall_s"))


@pytest.mark.cuda
@needs_cuda
def test_sigkill_resume_on_cuda_matches_uninterrupted_run(clean_cuda_run, tmp_path):
    """A run on CUDA SIGKILLed mid-episode after its checkpoint at 400, rerun to the end on CUDA, gives the
    uninterrupted CUDA run's eval.csv (tests/test_runner.py's check, on the GPU: the CUDA RNG state, the replay
    buffer and the optimizers all come back from the checkpoint onto the device)."""
    run = killed_run(tmp_path, "cuda")
    before = {name: read(run, name) for name in ("eval.csv", "train.csv")}
    assert (run / "lock").exists()  # left by the killed process: stale, must be taken over
    assert invoke(run_args(tmp_path, "cuda")) == 0, state_of(run)
    assert_resumed(run, before)
    pd.testing.assert_series_equal(read(run, "eval.csv")["return_mean"], read(clean_cuda_run, "eval.csv")["return_mean"])
    pd.testing.assert_frame_equal(read(run, "train.csv").drop(columns="wall_s"), read(clean_cuda_run, "train.csv").drop(columns="wall_s"))


@pytest.mark.cuda
@needs_cuda
def test_checkpoint_written_on_cuda_resumes_on_cpu(tmp_path):
    """The device is not part of a run's identity (sombench/runs/spec.py): a run killed on CUDA is resumed by
    the same command with --device cpu, from its checkpoint, and finishes there."""
    run = killed_run(tmp_path, "cuda")
    before = {name: read(run, name) for name in ("eval.csv", "train.csv")}
    assert invoke(run_args(tmp_path, "cpu")) == 0, state_of(run)
    assert_resumed(run, before)


@pytest.mark.cuda
@needs_cuda
def test_checkpoint_written_on_cpu_resumes_on_cuda(tmp_path):
    """The reverse: a run killed on the CPU is resumed with --device cuda from its checkpoint (its CPU RNG
    states, buffer and optimizer state moved onto the GPU) and finishes there."""
    run = killed_run(tmp_path, "cpu")
    before = {name: read(run, name) for name in ("eval.csv", "train.csv")}
    assert invoke(run_args(tmp_path, "cuda")) == 0, state_of(run)
    assert_resumed(run, before)


@pytest.mark.cuda
@needs_cuda
def test_run_compile_on_cuda_matches_eager(cli, tmp_path):
    """`sombench run --device cuda --compile` (CUDA graphs in the training loop: acting at batch 1, the update,
    the metric window keeping their outputs) gives the eager CUDA run's evaluations within rel 1e-3 and
    records what it compiled."""
    eager, compiled = tmp_path / "eager", tmp_path / "compiled"
    code, _, err = cli(run_args(eager, "cuda", steps=400, env="Pendulum-v1"))
    assert code == 0, err
    code, _, err = cli(run_args(compiled, "cuda", steps=400, env="Pendulum-v1", extra=("--compile",)))
    assert code == 0, err
    assert "warning" not in err, err
    e = read(run_path(eager, "Pendulum-v1", "sac"), "eval.csv")
    c = read(run_path(compiled, "Pendulum-v1", "sac"), "eval.csv")
    assert list(c["env_step"]) == list(e["env_step"]) == [200, 400]
    np.testing.assert_allclose(c["return_mean"], e["return_mean"], rtol=RTOL)
    config = store.read_json(run_path(compiled, "Pendulum-v1", "sac") / "config.json")
    assert config["compiled"] == [{"from_step": 0, "compile": True, "methods": ["act_step", "update"]}]


# -- CPU side: these run everywhere, CI included ---------------------------------------------------
def gpu_visible() -> bool:
    if HAS_CUDA:
        return True
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return False
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


@pytest.mark.skipif(gpu_visible(), reason="a GPU is visible here: the script would run the whole check (run `make gpu-check`)")
def test_gpu_check_without_a_gpu_says_so_and_exits_0(tmp_path):
    """`make gpu-check` on a machine without a GPU prints that there is none and exits 0 at once, writing nothing."""
    out = tmp_path / "gc"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPU_CHECK_")}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_check.py"), str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    elapsed = time.perf_counter() - start
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no GPU" in proc.stdout, proc.stdout
    assert elapsed < 30, elapsed
    assert not out.exists()
    if shutil.which("make"):
        proc = subprocess.run(["make", "-s", "gpu-check", f"GPU_CHECK_OUT={out}", f"PYTHON={sys.executable}"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0 and "no GPU" in proc.stdout, proc.stdout + proc.stderr


def load_gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "scripts" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gpu_check", module)  # its dataclasses look their module up there
    spec.loader.exec_module(sys.modules["gpu_check"])
    return sys.modules["gpu_check"]


def test_gpu_check_reads_what_its_steps_leave(tmp_path):
    """The parts of the script that run only after minutes on a GPU, on files shaped as the steps leave them:
    the interpreter it picks, Table 2 with ratios to SOM beside the paper's, the runs' SPS and returns, and test
    counts from a log cut off before pytest's JUnit file."""
    gc = load_gpu_check()
    cpu = {"executable": "/r/.venv/bin/python", "python": "3.11.7", "torch": "2.13.0+cpu", "torch_cuda": None,
           "cuda_available": False, "modules": {}}
    image = {"executable": "/opt/py3", "python": "3.12.3", "torch": "2.11.0+cu130", "torch_cuda": "13.0", "cuda_available": True,
             "gpu": "NVIDIA H200", "modules": {"typer": "0.15.1"}}
    pick, why = gc.choose_python([cpu, image])
    assert pick is image and "CUDA 13.0 build" in why and "a CPU build" in why
    assert gc.choose_python([cpu]) == (None, gc.choose_python([cpu])[1])
    assert "typer 0.15.1 < 0.29" in gc.missing_modules(image) and "gymnasium" in gc.missing_modules(image)
    assert gc.mujoco_spec("3.12.3") == "mujoco>=3,<4" and gc.mujoco_spec("3.11.7") == "mujoco==2.3.7"

    header = "algo,train_ms_mean,train_compiled_ms_mean,infer_ms_mean,infer_compiled_ms_mean,repeats,warmup,device,gpu,torch_version,env\n"
    (tmp_path / "a.csv").write_text(header + "som,2.0,1.0,0.2,0.1,10,5,cuda,H200,2.11,HalfCheetah-v4\n")
    (tmp_path / "b.csv").write_text(header + "qsm,4.0,3.0,0.6,0.3,10,5,cuda,H200,2.11,HalfCheetah-v4\n")
    gc.merge_csvs([tmp_path / "a.csv", tmp_path / "b.csv"], tmp_path / "latency.csv")
    table = gc.latency_section(tmp_path / "latency.csv")
    assert "| qsm | 4.000 | 3.000 | 2.00 | 3.00 | 1.11 | 0.600 | 0.300 | 3.00 | 3.00 | 2.78 |" in table, table
    assert "6.512 / 0.218 ms" in table

    run = tmp_path / "results" / "Hopper-v4" / "som" / "seed_0"
    run.mkdir(parents=True)
    (run / "state.json").write_text(json.dumps({"state": "interrupted", "env_step": 130500}))
    (run / "train.csv").write_text("env_step,loss,wall_s\n101000,1,40\n102000,1,70\n120000,1,110\n")
    (run / "eval.csv").write_text("env_step,return_mean,return_std,episodes,wall_s\n5000,10,1,10,3\n120000,250.5,3,10,111\n")
    row = gc.train_summary(tmp_path / "results", "som", 125.0)
    assert row["state"] == "interrupted" and row["sps_window"] == 130500 / 125 and row["sps_training"] == 18000 / 40
    assert (row["evals"], row["last_eval_step"], row["last_return"]) == (2, 120000, 250.5)
    assert "| som | interrupted | 125 | 130500 | 1044.0 | 450.0 | 2 | 120000: 250.5 | 250.5 |" in gc.render_training([row])

    log = tmp_path / "cuda-tests.log"
    log.write_text("[gw0] [ 2%] PASSED tests/test_cuda.py::test_update_and_act_on_cuda[sac]\n"
                   "[gw1] [ 4%] FAILED tests/test_cuda.py::test_sigkill_resume_on_cuda_matches_uninterrupted_run\n")
    counts = gc.log_counts(log)
    assert (counts["passed"], counts["failed"], counts["tests"]) == (1, 1, 2)


def test_cuda_marker_is_registered_and_selects_the_gpu_tests():
    """`pytest -m cuda` collects exactly the GPU tests of this file (under --strict-markers: the marker is
    registered in pyproject.toml), and without CUDA each of them skips with its reason."""
    expected = 0
    for name, f in vars(sys.modules[__name__]).items():
        marks = getattr(f, "pytestmark", [])
        if name.startswith("test_") and any(m.name == "cuda" for m in marks):
            expected += len(ALGOS) if any(m.name == "parametrize" for m in marks) else 1
    assert expected > 3 * len(ALGOS)
    base = [sys.executable, "-m", "pytest", "--strict-markers", "-p", "no:cacheprovider", "-m", "cuda", str(Path(__file__).relative_to(ROOT))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([*base, "--collect-only", "-q"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ids = [line for line in proc.stdout.splitlines() if "::" in line]
    assert len(ids) == expected, proc.stdout[-3000:]
    assert not any("without_a_gpu" in i or "marker_is_registered" in i for i in ids)
    if not HAS_CUDA:
        proc = subprocess.run([*base, "-q", "-rs"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert f"{expected} skipped" in proc.stdout and "CUDA is not available" in proc.stdout, proc.stdout[-3000:]
