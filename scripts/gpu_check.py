#!/usr/bin/env python3
"""sombench's one prepared check on a CUDA GPU (issue 29), `make gpu-check`: in under 8 minutes,

  1. machine     nvidia-smi, CPU, memory                                                    (budget  30 s)
  2. python      an interpreter whose torch is a CUDA build that sees the GPU              (budget  90 s)
  3. torch-cuda  only if none has one: pip installs the CUDA build of the venv's torch    (budget 240 s)
  4. deps        only if that interpreter lacks sombench's packages: from wheels or pip    (budget  90 s)
  5. cli         `python -m sombench --help` and pip freeze                                (budget  60 s)
  6. cuda-tests  `pytest -m cuda tests/test_cuda.py -v` (4 xdist workers, 120 s per test   (budget 170 s)
                 with pytest-timeout), beside a compile warm-up that fills the inductor cache
                 with SOM's and SAC's graphs (latency and Hopper shapes) and then the others'
  7. latency     `sombench latency --paper --compile --device cuda --format md --repeats   (budget 150 s)
                 10`: SOM and SAC in one call, the other algorithms in a second (a call
                 stopped at the deadline loses only its rows); eager only where compiling fails
  8. train       SOM and SAC, paper settings, Hopper-v4, side by side for a fixed window   (window 120 s + 30 s)
                 (default 2 minutes), stopped by SIGINT so their eval.csv and state stay
  9. plot        `sombench plot` of the two curves (best effort)                           (budget  45 s)

A whole-run deadline (GPU_CHECK_BUDGET_S, default 470 s) shortens any step to the time left, the training
window included, so one slow step cannot push the check past 8 minutes; every command runs in its own process
group under its own timeout. A failing step is recorded and the check goes on; the exit status is 1 if any
step that matters failed (the compile warm-up and the plot do not count), else 0.

Output: one folder, the argument, else $OUT when set (the device tool's), else gpu-check/: summary.md (every
step, the cuda tests, Table 2 beside the paper's, SOM against 6.51 / 0.218 ms, the two runs' SPS and returns),
latency.md, latency.csv, training-curves.csv, curves.png and gpu-check-details.tar.gz (logs, nvidia-smi,
pip freeze, the pytest JUnit file, the runs' CSV and JSON files). With $OUT (at most 8 files come back from
it) the details live in a temporary folder and only the tarball holds them; elsewhere also in OUT/details/.

Without a GPU (no `nvidia-smi -L` GPU and no NVIDIA driver) it prints that there is no GPU and exits 0 at once.

Which Python: GPU_CHECK_PYTHON if set; else the first of .venv/bin/python, python3 on PATH and this
interpreter whose torch sees the GPU (a GPU machine's image often ships its own CUDA torch, while the venv
holds the CPU build the Makefile pins). If none does, the CUDA build of the venv's torch version is installed
with pip into a cache folder put first on PYTHONPATH (the venv itself is left alone); GPU_CHECK_PIP_ARGS adds
pip options (e.g. an index of a given CUDA version). Packages that interpreter lacks are installed into a
cache folder from the wheels in GPU_CHECK_WHEELS (default .whl/), else with pip. A machine with no registry
needs those wheels carried: on a machine with one, run

    python3 scripts/gpu_check.py --fetch-wheels .whl [--python-version 3.12]

(gymnasium, mujoco, typer and the few packages they add, pinned to the venv's versions; mujoco 2.3.7 has no
wheel for Python 3.12, so there the newest mujoco 3.x is fetched: Hopper-v4 runs on it, only Pusher-v4 needs
mujoco < 3). sombench itself runs from this checkout (PYTHONPATH), not installed.

Knobs (environment): GPU_CHECK_BUDGET_S, GPU_CHECK_TRAIN_S (the window), GPU_CHECK_REPEATS (latency, 10),
GPU_CHECK_TRAIN_COMPILE (1: train with --compile), GPU_CHECK_COMPILE (1: latency with --compile and the
warm-up), GPU_CHECK_ALGOS (latency and warm-up: only these), GPU_CHECK_PYTHON, GPU_CHECK_WHEELS, GPU_CHECK_PIP_ARGS,
and GPU_CHECK_REHEARSE=1, which runs every step on the CPU with small sizes to test this script without a GPU.
Only the standard library is used here: any python3 runs it.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime as dt
import json
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUMMARY_RESERVE_S = 10.0
"""Kept back from the deadline for the summary and the tarball."""
PAPER_SOM_MS = (6.512, 0.218)
"""The paper's SOM update and acting time on its RTX 4090 (sombench/data/paper_table2.csv)."""
TRAIN_ALGOS = ("som", "sac")
TRAIN_ENV = "Hopper-v4"

# What sombench needs of the interpreter (module -> minimum version, None: any), from pyproject.toml.
REQUIRED = {"torch": "2.4", "numpy": "1.26", "gymnasium": "1.0", "mujoco": None, "typer": "0.29", "rich": "13",
            "pandas": "2.0", "scipy": "1.11", "sklearn": "1.3", "matplotlib": "3.8", "pytest": "8"}
# The distributions --fetch-wheels brings for a machine without a registry: those a GPU image with torch,
# numpy, pandas, scipy, scikit-learn, matplotlib, rich and pytest lacks (numpy is never carried: the image's
# compiled packages are built against its own).
DISTS = {"sklearn": "scikit-learn"}
"""Module -> distribution name, where they differ."""
ENV_DISTS = ("gymnasium", "farama-notifications", "glfw", "pyopengl", "absl-py", "cloudpickle")
CLI_DISTS = ("typer", "pydantic", "pydantic-core", "annotated-types", "typing-inspection", "annotated-doc", "shellingham",
             "typing-extensions")
PINS = {"gymnasium": "gymnasium==1.4.*", "typer": "typer>=0.29,<1"}
"""pyproject.toml's pins, for installs from a registry."""
PIP_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux1_x86_64")

PROBE = r"""
import importlib, json, sys
from importlib import metadata
out = {"executable": sys.executable, "python": "%d.%d.%d" % sys.version_info[:3], "modules": {}}
try:
    import torch
    out["torch"] = torch.__version__
    out["torch_cuda"] = torch.version.cuda
    out["cuda_available"] = bool(torch.cuda.is_available())
    out["gpu"] = torch.cuda.get_device_name(0) if out["cuda_available"] else None
except Exception as exc:
    out["torch_error"] = "%s: %s" % (type(exc).__name__, exc)
for name in MODULES:
    try:
        module = importlib.import_module(name)
    except Exception:
        out["modules"][name] = None
        continue
    try:
        out["modules"][name] = metadata.version(DISTS.get(name, name))
    except Exception:
        out["modules"][name] = str(getattr(module, "__version__", "0"))
for name in ("triton", "xdist", "pytest_timeout"):
    try:
        importlib.import_module(name)
        out[name] = True
    except Exception:
        out[name] = False
print(json.dumps(out))
"""


# -- small helpers ----------------------------------------------------------------------------------
def version_tuple(text: str | None) -> tuple[int, ...]:
    """The leading numbers of a version (`2.11.0+cu130` -> (2, 11, 0)); () for None."""
    if not text:
        return ()
    return tuple(int(x) for x in re.findall(r"\d+", text.split("+")[0])[:3])


def missing_modules(probe: dict) -> list[str]:
    """REQUIRED modules a probed interpreter lacks or has too old."""
    have = probe.get("modules", {})
    out = []
    for name, minimum in REQUIRED.items():
        version = probe.get("torch") if name == "torch" else have.get(name)
        if version is None or (minimum and version_tuple(version) < version_tuple(minimum)):
            out.append(name if version is None else f"{name} {version} < {minimum}")
    return out


def choose_python(probes: list[dict]) -> tuple[dict | None, str]:
    """The interpreter to run sombench with, and why: the first whose torch sees the GPU, preferring one that
    also has every package; None when no torch sees the GPU (then a CUDA torch must be installed)."""
    seeing = [p for p in probes if p.get("cuda_available")]
    if not seeing:
        return None, "no interpreter's torch sees the GPU: " + "; ".join(describe_probe(p) for p in probes)
    complete = [p for p in seeing if not missing_modules(p)]
    pick = (complete or seeing)[0]
    others = [p for p in probes if p is not pick]
    why = f"{describe_probe(pick)}: its torch is a CUDA build that sees the GPU"
    if others:
        why += "; not " + "; ".join(describe_probe(p) for p in others)
    return pick, why


def describe_probe(p: dict) -> str:
    if "torch" not in p:
        return f"{p['executable']} (no torch: {p.get('torch_error', 'not importable')})"
    kind = f"CUDA {p['torch_cuda']} build" if p.get("torch_cuda") else "CPU build"
    sees = f", sees {p['gpu']}" if p.get("cuda_available") else ", sees no GPU"
    return f"{p['executable']} (Python {p['python']}, torch {p['torch']}, a {kind}{sees})"


def mujoco_spec(python: str) -> str:
    """mujoco 2.3.7 (pyproject's pin) has wheels up to Python 3.11; from 3.12 on the newest 3.x (4.0.0 has a solver bug)."""
    return "mujoco==2.3.7" if version_tuple(python)[:2] < (3, 12) else "mujoco>=3,<4"


def gpu_present() -> tuple[bool, str]:
    """Whether this machine has an NVIDIA GPU, without importing torch (a CPU torch would say no either way)."""
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            proc = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.SubprocessError) as exc:
            return False, f"nvidia-smi -L failed: {exc}"
        if proc.returncode == 0 and any(line.startswith("GPU ") for line in proc.stdout.splitlines()):
            return True, proc.stdout.strip()
        return False, f"nvidia-smi -L lists none (exit {proc.returncode}: {(proc.stderr or proc.stdout).strip()[:200]})"
    gpus = Path("/proc/driver/nvidia/gpus")
    if gpus.is_dir() and any(gpus.iterdir()):
        return True, "the NVIDIA driver lists a GPU in /proc/driver/nvidia/gpus (no nvidia-smi on PATH)"
    return False, "no nvidia-smi on PATH and no NVIDIA driver loaded"


_LIVE: set[subprocess.Popen] = set()
"""Commands running now, ended with their groups if the check itself is interrupted."""


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL what is left of the process group the command started (its own session: only ours)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_cmd(cmd: list[str], log: Path, timeout: float, env: dict[str, str] | None = None, stdout: Path | None = None,
            stop: signal.Signals = signal.SIGTERM, grace: float = 15.0) -> tuple[int | None, bool, float]:
    """Run `cmd` in its own session, output to `log` (stdout to `stdout` if given), for at most `timeout` s: then
    `stop` goes to the command (SIGINT: its main process only, as Ctrl-C would; else its whole group) and after
    `grace` s SIGKILL to the group. Returns (exit code or None if it could not start, timed out, seconds)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with open(log, "ab") as err, open(stdout, "wb") if stdout else open(os.devnull, "wb") as out:
        err.write(f"$ {shlex.join(cmd)}\n".encode())
        err.flush()
        try:
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out if stdout else err, stderr=err, start_new_session=True)
        except OSError as exc:
            err.write(f"could not start: {exc}\n".encode())
            return None, False, 0.0
        _LIVE.add(proc)
        timed_out = False
        try:
            proc.wait(timeout=max(timeout, 0.1))
        except subprocess.TimeoutExpired:
            timed_out = True
            try:
                if stop == signal.SIGINT:
                    proc.send_signal(stop)
                else:
                    os.killpg(proc.pid, stop)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                kill_group(proc)
                proc.wait()
        kill_group(proc)  # compile workers and other children it left behind
        _LIVE.discard(proc)
        elapsed = time.monotonic() - start
        err.write(f"[exit {proc.returncode}{', stopped at its time limit' if timed_out else ''}, {elapsed:.1f} s]\n".encode())
    return proc.returncode, timed_out, elapsed


# -- the check ------------------------------------------------------------------------------------
@dataclasses.dataclass
class Step:
    name: str
    budget_s: float
    status: str = "not run"
    """ok, failed, skipped or not run"""
    seconds: float = 0.0
    note: str = ""
    counts: bool = True
    """Whether a failure makes the check fail (the compile warm-up and the plot do not)."""


class Check:
    def __init__(self, out: Path, details: Path, rehearse: bool, keep_details: bool = True):
        self.out, self.details, self.rehearse, self.keep_details = out, details, rehearse, keep_details
        self.budget = float(os.environ.get("GPU_CHECK_BUDGET_S", 470))
        self.deadline = time.monotonic() + self.budget
        self.started = dt.datetime.now(dt.timezone.utc)
        self.steps: list[Step] = []
        self.lock = threading.Lock()
        self.python: dict | None = None
        self.python_why = ""
        self.probes: list[dict] = []
        self.results_train: Path | None = None
        self.extra_paths: list[str] = []
        self.device = "cpu" if rehearse else "cuda"
        self.scratch = Path(tempfile.mkdtemp(prefix="gpu-check-"))
        self.cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sombench-gpu-check"
        self.sections: dict[str, str] = {}
        self.train_rows: list[dict] = []

    # -- bookkeeping
    def left(self) -> float:
        return self.deadline - time.monotonic() - SUMMARY_RESERVE_S

    def step(self, name: str, budget: float, counts: bool = True) -> Step:
        s = Step(name, budget, counts=counts)
        with self.lock:
            self.steps.append(s)
        return s

    def limit(self, s: Step, minimum: float = 5.0) -> float | None:
        """The step's timeout: its budget, cut to what the deadline leaves; None (and the step skipped) if under `minimum`."""
        t = min(s.budget_s, self.left())
        if t < minimum:
            self.finish_step(s, "skipped", 0.0, f"out of time ({max(t, 0):.0f} s left of the {self.budget:.0f} s budget)")
            return None
        return t

    def finish_step(self, s: Step, status: str, seconds: float, note: str = "") -> None:
        s.status, s.seconds, s.note = status, seconds, note
        print(f"gpu-check: {s.name}: {status} ({seconds:.0f} s){': ' + note if note else ''}", flush=True)

    def env(self, compile_threads: int | None = None, perf_hints: bool = False) -> dict[str, str]:
        env = dict(os.environ)
        if perf_hints:  # inductor says in the log where it ran a graph without CUDA graphs, and why
            env["TORCH_LOGS"] = ",".join(filter(None, [os.environ.get("TORCH_LOGS"), "perf_hints"]))
        env["PYTHONPATH"] = os.pathsep.join([*self.extra_paths, str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
        env["PYTHONUNBUFFERED"] = "1"
        env["TORCHINDUCTOR_CACHE_DIR"] = str(self.scratch / "inductor-cache")  # shared: the warm-up fills it for later steps
        env.setdefault("COLUMNS", "160")
        if compile_threads:
            env["TORCHINDUCTOR_COMPILE_THREADS"] = str(compile_threads)
        return env

    @property
    def py(self) -> str:
        return self.python["executable"] if self.python else sys.executable

    def sombench(self, *args: str) -> list[str]:
        return [self.py, "-m", "sombench", *args]

    # -- steps
    def machine(self) -> None:
        s = self.step("machine", 30)
        start = time.monotonic()
        lines = [f"date: {self.started.isoformat(timespec='seconds')}", f"host: {platform.node()}", f"platform: {platform.platform()}",
                 f"cpus: {os.cpu_count()}"]
        for cmd in (["nvidia-smi"], ["nvidia-smi", "--query-gpu=name,memory.total,driver_version,clocks.max.sm", "--format=csv"],
                    ["nvidia-smi", "-q"], ["free", "-g"], ["lscpu"]):
            if shutil.which(cmd[0]):
                try:
                    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
                    lines += [f"$ {shlex.join(cmd)}", proc.stdout.rstrip(), proc.stderr.rstrip()]
                except (OSError, subprocess.SubprocessError) as exc:
                    lines.append(f"$ {shlex.join(cmd)}: {exc}")
        (self.details / "machine.txt").write_text("\n".join(lines) + "\n")
        gpu = ""
        if shutil.which("nvidia-smi"):
            try:
                gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                                     capture_output=True, text=True, timeout=10).stdout.strip()
            except (OSError, subprocess.SubprocessError):
                pass
        self.sections["gpu"] = gpu or ("none (rehearsal on the CPU)" if self.rehearse else "unknown")
        self.finish_step(s, "ok", time.monotonic() - start, gpu)

    def probe(self, exe: str, timeout: float, log: Path) -> dict | None:
        code = f"MODULES = {list(k for k in REQUIRED if k != 'torch')!r}\nDISTS = {DISTS!r}\n" + PROBE
        try:
            proc = subprocess.run([exe, "-c", code], capture_output=True, text=True, timeout=timeout, env=self.env(), cwd=ROOT)
        except (OSError, subprocess.SubprocessError) as exc:
            with open(log, "a") as f:
                f.write(f"{exe}: {exc}\n")
            return None
        with open(log, "a") as f:
            f.write(f"{exe}: exit {proc.returncode}\n{proc.stdout}{proc.stderr[-2000:]}\n")
        try:
            return json.loads(proc.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return None

    def candidates(self) -> list[str]:
        if os.environ.get("GPU_CHECK_PYTHON"):
            return [os.environ["GPU_CHECK_PYTHON"]]
        found, seen = [], set()
        for exe in (str(ROOT / ".venv" / "bin" / "python"), shutil.which("python3"), sys.executable):
            if exe and Path(exe).exists():
                key = os.path.realpath(exe) if "/.venv/" not in exe else exe
                if key not in seen:
                    seen.add(key)
                    found.append(exe)
        return found

    def choose_python(self) -> None:
        s = self.step("python", 90)
        start = time.monotonic()
        log = self.details / "python.log"
        probes = self.probes
        for exe in self.candidates():
            t = self.limit(s)
            if t is None:
                return
            p = self.probe(exe, min(t, 60), log)
            if p is not None:
                probes.append(p)
        if self.rehearse:
            usable = [p for p in probes if "torch" in p]
            self.python = usable[0] if usable else None
            self.python_why = "rehearsal on the CPU: " + (describe_probe(self.python) if self.python else "no torch found")
        else:
            self.python, self.python_why = choose_python(probes)
        print(f"gpu-check: python: {self.python_why}", flush=True)
        self.finish_step(s, "ok" if self.python else "failed", time.monotonic() - start,
                         describe_probe(self.python) if self.python else "no interpreter's torch sees the GPU")

    def install_cuda_torch(self) -> None:
        """No interpreter's torch sees the GPU: pip-install the CUDA build of the venv's torch version into a
        cache folder put first on PYTHONPATH, and probe again."""
        s = self.step("torch-cuda", 240)
        probes = self.probes
        cuda_builds = [p for p in probes if p.get("torch_cuda")]
        if cuda_builds:
            self.finish_step(s, "failed", 0.0, f"{describe_probe(cuda_builds[0])}: a CUDA build that sees no GPU; installing "
                             "another torch would not help (check the driver: nvidia-smi in details/machine.txt)")
            return
        base = next((p for p in probes if "/.venv/" in p["executable"] and "torch" in p), None) or next((p for p in probes if "torch" in p), None)
        if base is None:
            self.finish_step(s, "failed", 0.0, "no interpreter with torch found to install a CUDA build for")
            return
        t = self.limit(s, 30)
        if t is None:
            return
        version = base["torch"].split("+")[0]
        target = self.cache / f"torch-{version}-py{base['python']}"
        print(f"gpu-check: torch-cuda: {describe_probe(base)} cannot use the GPU; installing torch=={version} (the same release; "
              f"pip's default Linux wheel of it is the CUDA build) into {target}, first on PYTHONPATH, leaving the venv as it is",
              flush=True)
        cmd = [base["executable"], "-m", "pip", "install", "--no-input", "--retries", "1", "--timeout", "20", "--upgrade",
               "--target", str(target), f"torch=={version}", *shlex.split(os.environ.get("GPU_CHECK_PIP_ARGS", ""))]
        rc, timed_out, secs = run_cmd(cmd, self.details / "torch-cuda.log", t, env=self.env())
        self.extra_paths.insert(0, str(target))
        p = self.probe(base["executable"], 60, self.details / "python.log")
        if p and p.get("cuda_available"):
            self.python, self.python_why = p, f"{describe_probe(p)}: installed as above"
            self.finish_step(s, "ok", secs, describe_probe(p))
        else:
            self.extra_paths.remove(str(target))
            why = "timed out" if timed_out else f"pip exited {rc}"
            self.finish_step(s, "failed", secs, f"no CUDA torch could be installed ({why}; no registry reachable, or its index serves "
                             "only a CPU build: set GPU_CHECK_PIP_ARGS to a CUDA index, or GPU_CHECK_PYTHON); see torch-cuda.log")

    def install_deps(self) -> None:
        if self.python is None:
            return
        missing = missing_modules(self.python)
        if not missing:
            return
        s = self.step("deps", 90)
        t = self.limit(s)
        if t is None:
            return
        py = self.python["executable"]
        target = self.cache / f"site-py{self.python['python']}"
        wheels = Path(os.environ.get("GPU_CHECK_WHEELS", ROOT / ".whl"))
        found = sorted(wheels.glob("*.whl")) if wheels.is_dir() else []
        if found:
            how = f"{len(found)} wheels from {wheels}"
            cmd = [py, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile", "--no-cache-dir", "--upgrade",
                   "--target", str(target), *map(str, found)]
        else:
            specs = [PINS.get(d, d) for d in ENV_DISTS] + [mujoco_spec(self.python["python"])]
            if any(m.startswith("typer") for m in missing):
                specs += [PINS.get(d, d) for d in CLI_DISTS]
            how = f"pip ({' '.join(specs)}); no wheels in {wheels}"
            cmd = [py, "-m", "pip", "install", "-q", "--no-input", "--retries", "0", "--timeout", "15", "--no-deps", "--upgrade",
                   "--target", str(target), *specs, *shlex.split(os.environ.get("GPU_CHECK_PIP_ARGS", ""))]
        print(f"gpu-check: deps: {py} lacks {', '.join(missing)}; installing {how} into {target}", flush=True)
        rc, timed_out, secs = run_cmd(cmd, self.details / "deps.log", t, env=self.env())
        self.extra_paths.append(str(target))
        p = self.probe(py, 60, self.details / "python.log")
        still = missing_modules(p) if p else missing
        if p:
            self.python = p
        self.finish_step(s, "failed" if still else "ok", secs,
                         f"still missing: {', '.join(still)} (pip exited {rc}{', timed out' if timed_out else ''}; see deps.log)" if still
                         else f"installed {how}")

    def cli_smoke(self) -> None:
        s = self.step("cli", 60)
        t = self.limit(s)
        if t is None:
            return
        rc, timed_out, secs = run_cmd(self.sombench("--help"), self.details / "cli.log", t / 2, env=self.env())
        run_cmd([self.py, "-m", "pip", "freeze"], self.details / "pip-freeze.log", min(30, t / 2), env=self.env(),
                stdout=self.details / "pip-freeze.txt")
        ok = rc == 0
        self.finish_step(s, "ok" if ok else "failed", secs, "" if ok else f"`python -m sombench --help` exited {rc}; see cli.log")

    def cuda_tests(self, s: Step, t: float) -> None:
        junit = self.details / "cuda-tests.xml"
        # -v: a line per test as it ends, so the log says what passed even if the step is stopped at its limit
        cmd = [self.py, "-m", "pytest", "-m", "cuda", "tests/test_cuda.py", "-v", "-rA", "-p", "no:cacheprovider", f"--junitxml={junit}"]
        if self.python and self.python.get("xdist") and not self.rehearse:
            cmd += ["-n", "4"]
        if self.python and self.python.get("pytest_timeout"):
            cmd += ["--timeout", "120"]  # one hung test fails alone
        log = self.details / "cuda-tests.log"
        rc, timed_out, secs = run_cmd(cmd, log, t, env=self.env(compile_threads=3))
        counts = junit_counts(junit) if junit.exists() else log_counts(log)
        self.sections["cuda-tests"] = render_junit(counts)
        bad = rc != 0 or timed_out or counts["skipped"] or not counts["tests"]
        note = f"{counts['passed']} passed, {counts['failed']} failed, {counts['errors']} errors, {counts['skipped']} skipped"
        if timed_out:
            note += "; stopped at its time limit"
        elif rc not in (0, 1) and not counts["tests"]:
            note = f"pytest exited {rc}; see cuda-tests.log"
        self.finish_step(s, "failed" if bad else "ok", secs, note)

    def prewarm(self, s: Step, t: float) -> None:
        """Compile the latency step's graphs (every algorithm, HalfCheetah-v4 shapes) and the training runs'
        (SOM and SAC, Hopper-v4 shapes) into the shared inductor cache, 2 at a time, SOM's and SAC's first, while
        the tests run."""
        first = [job for name in TRAIN_ALGOS for job in ((name, None), (name, TRAIN_ENV))]
        jobs = first + [(name, None) for name in self.algorithms() if name not in TRAIN_ALGOS]
        deadline = time.monotonic() + t
        results: list[tuple[str, int | None, bool]] = []

        def one(job):
            name, env = job
            left = deadline - time.monotonic()
            if left < 5:
                return name, None, True
            args = ["latency", "--algos", name, "--device", self.device, "--compile", "--repeats", "1", "--format", "csv",
                    "--results", str(self.scratch / "prewarm")] + (["--env", env] if env else [])
            rc, timed_out, _ = run_cmd(self.sombench(*args), self.details / f"prewarm-{name}{'-' + env if env else ''}.log", left,
                                       env=self.env(compile_threads=2), stdout=self.scratch / f"prewarm-{name}-{env}.csv")
            return f"{name}{'@' + env if env else ''}", rc, timed_out

        start = time.monotonic()
        with ThreadPoolExecutor(2) as pool:  # beside 4 test workers: 4 x 3 + 2 x 2 compile threads on 16 cores
            results = list(pool.map(one, jobs))
        failed = [n for n, rc, to in results if rc not in (0, None) and not to]
        late = [n for n, rc, to in results if to]
        note = f"{len(results) - len(failed) - len(late)} of {len(results)} compiled"
        note += f"; failed: {', '.join(failed)}" if failed else ""
        note += f"; not done in time: {', '.join(late)}" if late else ""
        self.finish_step(s, "failed" if failed else "ok", time.monotonic() - start, note)

    def tests_and_prewarm(self) -> None:
        tests = self.step("cuda-tests", 170)
        warm = self.step("compile-warm-up", 170, counts=False)
        t = self.limit(tests, 20)
        if t is None:
            self.finish_step(warm, "skipped", 0.0, "out of time")
            return
        threads = [threading.Thread(target=self.cuda_tests, args=(tests, t))]
        if self.compiling and not self.rehearse:
            threads.append(threading.Thread(target=self.prewarm, args=(warm, t)))
        else:
            self.finish_step(warm, "skipped", 0.0, "no --compile" if not self.compiling else "rehearsal")
        for th in threads:
            th.start()
        for th in threads:
            th.join()

    @property
    def compiling(self) -> bool:
        return os.environ.get("GPU_CHECK_COMPILE", "0" if self.rehearse else "1") == "1"

    def algorithms(self) -> list[str]:
        if os.environ.get("GPU_CHECK_ALGOS"):
            return [n for n in os.environ["GPU_CHECK_ALGOS"].split(",") if n]
        if self.rehearse:
            return ["sac", "som"]
        names = sorted(p.stem for p in (ROOT / "algorithms").glob("*.py") if not p.name.startswith("_"))
        return names

    def latency_groups(self) -> list[list[str]]:
        """SOM (the ratios' reference) and SAC first, in a call of their own, then the rest: a call stopped at the
        deadline loses only its own rows."""
        names = self.algorithms()
        first = [n for n in ("som", "sac") if n in names]
        rest = [n for n in names if n not in first]
        return [g for g in (first, rest) if g]

    def latency(self) -> None:
        repeats = os.environ.get("GPU_CHECK_REPEATS", "3" if self.rehearse else "10")
        results = self.scratch / "latency-results"
        s = self.step("latency", 150)
        compiled = self.compiling
        md = self.details / "latency.md"
        problems, done, start = [], [], time.monotonic()
        for i, group in enumerate(self.latency_groups()):
            t = self.limit(s, 20) if i == 0 else min(s.budget_s - (time.monotonic() - start), self.left())
            if t is None:
                return
            if t < 15:
                problems.append(f"{','.join(group)}: out of time")
                continue
            args = ["latency", "--algos", ",".join(group), "--paper", "--device", self.device, "--format", "md", "--repeats", repeats,
                    "--results", str(results)] + (["--threads", "1"] if self.rehearse else [])
            part = self.scratch / f"latency-{i}.md"
            rc, timed_out, _ = run_cmd(self.sombench(*args, *(["--compile"] if compiled else [])), self.details / "latency.log", t,
                                       env=self.env(perf_hints=compiled), stdout=part)
            if rc != 0 and not timed_out and compiled and self.left() > 30:  # compilation broke: eager numbers at least
                rc, timed_out, _ = run_cmd(self.sombench(*args), self.details / "latency.log", min(60, self.left()), env=self.env(),
                                           stdout=part)
                problems.append(f"{','.join(group)}: the compiled run failed, eager only")
            if rc == 0 and not timed_out:
                done += group
                with open(md, "a") as f:
                    f.write(f"<!-- sombench {' '.join(args)}{' --compile' if compiled else ''} -->\n\n{part.read_text()}\n")
            else:
                problems.append(f"{','.join(group)}: exited {rc}{', stopped at its time limit' if timed_out else ''} (latency.log)")
        note = f"{len(done)} algorithms, {'compiled and eager' if compiled else 'eager'}, --repeats {repeats}"
        self.finish_step(s, "failed" if problems else "ok", time.monotonic() - start, "; ".join([note, *problems]))
        found = sorted((results / "latency").glob("*.csv")) if (results / "latency").is_dir() else []
        if found:
            merge_csvs(found, self.details / "latency.csv")
            self.sections["latency"] = latency_section(self.details / "latency.csv")

    def train(self) -> None:
        window = float(os.environ.get("GPU_CHECK_TRAIN_S", 25 if self.rehearse else 120))
        grace = 30.0
        s = self.step("train", window + grace)
        t = self.limit(s, 40)
        if t is None:
            return
        window = min(window, t - grace)
        # the latency step's store: `sombench run` reads its CSV for the cost projection it prints before
        # training, instead of timing the algorithm again inside the window
        results = self.scratch / "latency-results"
        threads = "1" if self.rehearse else str(max(1, min(8, (os.cpu_count() or 2) // 2)))
        eval_every = os.environ.get("GPU_CHECK_EVAL_EVERY", "2000" if self.rehearse else "5000")
        procs = {}
        for algo in TRAIN_ALGOS:
            args = ["run", "--algo", algo, "--env", TRAIN_ENV, "--seeds", "1", "--device", self.device, "--threads", threads,
                    "--eval-every", eval_every, "--eval-episodes", "2" if self.rehearse else "10", "--log-every", "1000",
                    "--results", str(results)]
            if os.environ.get("GPU_CHECK_TRAIN_COMPILE", "0" if self.rehearse else "1") == "1":
                args.append("--compile")
            procs[algo] = args
        print(f"gpu-check: train: {', '.join(TRAIN_ALGOS)} on {TRAIN_ENV} side by side for {window:.0f} s "
              f"(paper settings, --eval-every {eval_every}, {threads} threads each)", flush=True)
        outcomes: dict[str, tuple] = {}

        def one(algo):
            outcomes[algo] = run_cmd(self.sombench(*procs[algo]), self.details / f"train-{algo}.log", window, env=self.env(),
                                     stop=signal.SIGINT, grace=grace - 5)

        start = time.monotonic()
        workers = [threading.Thread(target=one, args=(a,)) for a in TRAIN_ALGOS]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        problems = []
        for algo in TRAIN_ALGOS:
            rc, timed_out, secs = outcomes[algo]
            row = train_summary(results, algo, secs)
            self.train_rows.append(row)
            run = row.get("run")
            if run:
                for name in ("eval.csv", "train.csv", "state.json", "config.json", "error.log"):
                    if (Path(run) / name).exists():
                        shutil.copy(Path(run) / name, self.details / f"train-{algo}-{name}")
            if row.get("state") not in ("interrupted", "done") or not row.get("evals"):
                problems.append(f"{algo}: state {row.get('state')}, {row.get('evals', 0)} evaluations, exit {rc}"
                                + (f" ({row['reason']})" if row.get("reason") else ""))
        write_curves(results, self.details / "training-curves.csv")
        self.results_train = results
        self.finish_step(s, "failed" if problems else "ok", time.monotonic() - start,
                         "; ".join(problems) if problems else f"window {window:.0f} s")

    def plot(self) -> None:
        s = self.step("plot", 45, counts=False)
        results = self.results_train
        if results is None or not results.exists():
            self.finish_step(s, "skipped", 0.0, "no training results")
            return
        t = self.limit(s)
        if t is None:
            return
        rc, timed_out, secs = run_cmd(self.sombench("plot", "--results", str(results), "--envs", TRAIN_ENV, "--out",
                                                    str(self.details / "curves.png")), self.details / "plot.log", t, env=self.env())
        ok = rc == 0 and (self.details / "curves.png").exists()
        self.finish_step(s, "ok" if ok else "failed", secs, "" if ok else f"exited {rc}; see plot.log")

    # -- the whole check
    def run(self) -> int:
        print(f"gpu-check: output in {self.out} (budget {self.budget:.0f} s{', rehearsal on the CPU' if self.rehearse else ''})", flush=True)
        self.machine()
        self.choose_python()
        if self.python is None and not self.rehearse:
            self.install_cuda_torch()
        self.install_deps()
        self.cli_smoke()
        self.tests_and_prewarm()
        self.latency()
        self.train()
        self.plot()
        return self.finish()

    def finish(self) -> int:
        failed = [s for s in self.steps if s.counts and s.status in ("failed", "skipped")]
        summary = self.summary(failed)
        (self.details / "summary.md").write_text(summary)
        for name in ("summary.md", "latency.md", "latency.csv", "training-curves.csv", "curves.png"):
            src = self.details / name
            if src.exists() and src.parent != self.out:
                shutil.copy(src, self.out / name)
        with tarfile.open(self.out / "gpu-check-details.tar.gz", "w:gz") as tar:
            tar.add(self.details, arcname="gpu-check-details")
        shutil.rmtree(self.scratch, ignore_errors=True)
        if not self.keep_details:
            shutil.rmtree(self.details, ignore_errors=True)
        print(summary, flush=True)
        print(f"gpu-check: {'FAILED: ' + ', '.join(s.name for s in failed) if failed else 'all steps passed'}; "
              f"everything is in {self.out}", flush=True)
        return 1 if failed else 0

    def summary(self, failed: list[Step]) -> str:
        elapsed = (dt.datetime.now(dt.timezone.utc) - self.started).total_seconds()
        lines = [f"# sombench gpu-check, {self.started.strftime('%Y-%m-%d %H:%M UTC')}", ""]
        if self.rehearse:
            lines += ["**Rehearsal on the CPU (GPU_CHECK_REHEARSE=1): no GPU numbers here.**", ""]
        lines += [f"- GPU: {self.sections.get('gpu', 'unknown')}", f"- host: {platform.node()}, {os.cpu_count()} CPUs",
                  f"- Python: {self.python_why or 'none found'}",
                  f"- total: {elapsed:.0f} s of a {self.budget:.0f} s budget; "
                  + (f"**{len(failed)} step(s) failed: {', '.join(s.name for s in failed)}**" if failed else "every step passed"), "",
                  "## Steps", "", "| step | status | seconds | budget | note |", "|---|---|---:|---:|---|"]
        for s in self.steps:
            status = s.status if s.counts else f"{s.status} (does not count)"
            lines.append(f"| {s.name} | {status} | {s.seconds:.0f} | {s.budget_s:.0f} | {s.note.replace('|', '/')} |")
        lines += ["", "## CUDA tests (`pytest -m cuda tests/test_cuda.py`)", "", self.sections.get("cuda-tests", "not run"), ""]
        lines += ["## Table 2 on this GPU (`sombench latency --paper --compile`)", "", self.sections.get("latency", "no latency CSV"), ""]
        md = self.details / "latency.md"
        if md.exists() and md.read_text().strip():
            lines += ["`sombench latency` printed:", "", md.read_text().strip(), ""]
        lines += [f"## SOM and SAC on {TRAIN_ENV}, side by side", "", render_training(self.train_rows), ""]
        return "\n".join(lines) + "\n"


# -- reading what the steps left ------------------------------------------------------------------
def junit_counts(path: Path) -> dict:
    counts = {"tests": 0, "failed": 0, "errors": 0, "skipped": 0, "passed": 0, "problems": [], "skips": []}
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return counts
    for case in root.iter("testcase"):
        counts["tests"] += 1
        name = f"{case.get('classname', '')}.{case.get('name', '')}".split("test_cuda.")[-1]
        for kind, key in (("failure", "failed"), ("error", "errors"), ("skipped", "skipped")):
            el = case.find(kind)
            if el is not None:
                counts[key] += 1
                message = (el.get("message") or el.text or "").strip().splitlines()
                (counts["skips"] if key == "skipped" else counts["problems"]).append((name, kind, message[0][:300] if message else ""))
                break
        else:
            counts["passed"] += 1
    return counts


def log_counts(path: Path) -> dict:
    """What `pytest -v` logged per test, for a run stopped before it wrote its JUnit file."""
    counts = {"tests": 0, "failed": 0, "errors": 0, "skipped": 0, "passed": 0, "problems": [], "skips": []}
    pattern = re.compile(r"(?:(PASSED|FAILED|ERROR|SKIPPED)\s.*?(test_cuda\.py::\S+)|(test_cuda\.py::\S+)\s+(PASSED|FAILED|ERROR|SKIPPED))")
    seen: dict[str, str] = {}
    text = path.read_text(errors="replace") if path.exists() else ""
    for line in text.splitlines():
        m = pattern.search(line)
        if m:
            outcome, name = (m.group(1), m.group(2)) if m.group(1) else (m.group(4), m.group(3))
            seen.setdefault(name.split("::", 1)[1], outcome)
    for name, outcome in seen.items():
        counts["tests"] += 1
        key = {"PASSED": "passed", "FAILED": "failed", "ERROR": "errors", "SKIPPED": "skipped"}[outcome]
        counts[key] += 1
        if key in ("failed", "errors"):
            counts["problems"].append((name, outcome.lower(), "see cuda-tests.log"))
    counts["problems"].append(("(the run)", "note", "stopped before its end: counts from the log, tests not reached are missing"))
    return counts


def render_junit(c: dict) -> str:
    lines = [f"{c['passed']} passed, {c['failed']} failed, {c['errors']} errors, {c['skipped']} skipped (of {c['tests']})."]
    for name, kind, message in c["problems"]:
        lines.append(f"- {kind}: `{name}`: {message}")
    reasons = sorted({m for _, _, m in c["skips"]})
    for reason in reasons:
        lines.append(f"- skipped: {reason}")
    return "\n".join(lines)


def _float(value: str | None) -> float | None:
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return x if x == x else None


def _ms(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None or b <= 0 else f"{a / b:.2f}"


def latency_section(path: Path) -> str:
    """Table 2 here (eager and compiled means, ms) with each algorithm's time / SOM's beside the paper's, and
    SOM against the paper's 6.51 / 0.218 ms."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    paper_path = ROOT / "sombench" / "data" / "paper_table2.csv"
    with open(paper_path, newline="") as f:
        paper = {r["algo"].lower(): r for r in csv.DictReader(f)}
    by = {r["algo"]: r for r in rows}
    som = by.get("som", {})
    ref = {k: _float(som.get(k)) for k in ("train_ms_mean", "train_compiled_ms_mean", "infer_ms_mean", "infer_compiled_ms_mean")}
    p_som = paper.get("som", {})
    lines = ["| Algorithm | train eager | train compiled | × SOM eager | × SOM compiled | paper × SOM | act eager | act compiled "
             "| × SOM eager | × SOM compiled | paper × SOM |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        v = {k: _float(r.get(k)) for k in ref}
        p = paper.get(r["algo"].lower(), {})
        lines.append(" | ".join([
            f"| {r['algo']}", _ms(v["train_ms_mean"]), _ms(v["train_compiled_ms_mean"]),
            _ratio(v["train_ms_mean"], ref["train_ms_mean"]), _ratio(v["train_compiled_ms_mean"], ref["train_compiled_ms_mean"]),
            _ratio(_float(p.get("train_ms")), _float(p_som.get("train_ms"))), _ms(v["infer_ms_mean"]), _ms(v["infer_compiled_ms_mean"]),
            _ratio(v["infer_ms_mean"], ref["infer_ms_mean"]), _ratio(v["infer_compiled_ms_mean"], ref["infer_compiled_ms_mean"]),
            _ratio(_float(p.get("infer_ms")), _float(p_som.get("infer_ms")))]) + " |")
    meta = rows[0] if rows else {}
    lines += ["", f"Means in ms over {meta.get('repeats', '?')} repeats after {meta.get('warmup', '?')} warm-ups; "
              f"device {meta.get('device')}, {meta.get('gpu')}, torch {meta.get('torch_version')}, env {meta.get('env')}."]
    if som:
        lines.append(f"SOM here: update {_ms(ref['train_ms_mean'])} ms eager, {_ms(ref['train_compiled_ms_mean'])} ms compiled; "
                     f"acting {_ms(ref['infer_ms_mean'])} ms eager, {_ms(ref['infer_compiled_ms_mean'])} ms compiled; the paper "
                     f"(RTX 4090): {PAPER_SOM_MS[0]} / {PAPER_SOM_MS[1]} ms (here / paper: update "
                     f"{_ratio(ref['train_ms_mean'], PAPER_SOM_MS[0])} eager, {_ratio(ref['train_compiled_ms_mean'], PAPER_SOM_MS[0])} compiled; "
                     f"acting {_ratio(ref['infer_ms_mean'], PAPER_SOM_MS[1])} eager, {_ratio(ref['infer_compiled_ms_mean'], PAPER_SOM_MS[1])} compiled).")
    return "\n".join(lines)


def merge_csvs(paths: list[Path], out: Path) -> None:
    """The rows of several `sombench latency` CSVs (one header) in one file."""
    rows, header = [], None
    for path in paths:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            header = header or reader.fieldnames
            rows += list(reader)
    with open(out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header or [], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _run_dir(results: Path, algo: str) -> Path | None:
    found = sorted(p for p in (results / TRAIN_ENV).glob(f"{algo}*/seed_0") if p.parent.name == algo or p.parent.name.startswith(f"{algo}@"))
    return found[0] if found else None


def _csv_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def train_summary(results: Path, algo: str, seconds: float) -> dict:
    """What one windowed run reached: its state, env steps, SPS over the window and after warm-up (from the second
    train.csv row to the last: the first is logged at the first update and a delayed update's second graph
    compiles at the next, so compilation falls before the second; evaluations included; from the first row when
    there are only two), and its last evaluation."""
    run = _run_dir(results, algo)
    row: dict = {"algo": algo, "seconds": seconds, "run": str(run) if run else None}
    if run is None:
        return row
    try:
        state = json.loads((run / "state.json").read_text())
    except (OSError, ValueError):
        state = {}
    row.update(state=state.get("state"), reason=state.get("reason"), steps=state.get("env_step"))
    if isinstance(row["steps"], int) and seconds > 0:
        row["sps_window"] = row["steps"] / seconds
    train = [(int(r["env_step"]), float(r["wall_s"])) for r in _csv_rows(run / "train.csv") if r.get("wall_s")]
    if len(train) >= 2:
        (s0, w0), (s1, w1) = train[1 if len(train) >= 3 else 0], train[-1]
        row["sps_training"] = (s1 - s0) / (w1 - w0) if w1 > w0 else None
        row["first_update_step"] = train[0][0]
    evals = _csv_rows(run / "eval.csv")
    row["evals"] = len(evals)
    if evals:
        row["last_eval_step"], row["last_return"] = int(evals[-1]["env_step"]), float(evals[-1]["return_mean"])
        row["best_return"] = max(float(r["return_mean"]) for r in evals)
    return row


def write_curves(results: Path, path: Path) -> None:
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["algo", "env", "env_step", "return_mean", "return_std", "wall_s"])
        for algo in TRAIN_ALGOS:
            run = _run_dir(results, algo)
            for r in _csv_rows(run / "eval.csv") if run else []:
                out.writerow([algo, TRAIN_ENV, r["env_step"], r["return_mean"], r.get("return_std"), r.get("wall_s")])


def render_training(rows: list[dict]) -> str:
    if not rows:
        return "not run"
    lines = ["| Algorithm | state | window (s) | env steps | SPS over the window | SPS after warm-up | evaluations "
             "| last evaluation (step: return) | best return |", "|---|---|---:|---:|---:|---:|---:|---|---:|"]
    for r in rows:
        last = f"{r['last_eval_step']}: {r['last_return']:.1f}" if "last_return" in r else "-"
        best = f"{r['best_return']:.1f}" if "best_return" in r else "-"
        sps_t = f"{r['sps_training']:.1f}" if r.get("sps_training") else "-"
        sps_w = f"{r['sps_window']:.1f}" if r.get("sps_window") else "-"
        lines.append(f"| {r['algo']} | {r.get('state')} | {r['seconds']:.0f} | {r.get('steps', '-')} | {sps_w} | {sps_t} "
                     f"| {r.get('evals', 0)} | {last} | {best} |")
    lines += ["", "SPS over the window: env steps / the process's whole time (start-up, warm-up of uniform actions, "
              "compilation and evaluations included). SPS after warm-up: from train.csv, between its second and last rows "
              "(rows are written at each evaluation, so the last minutes before the stop may be missing). "
              "Curves: training-curves.csv, curves.png."]
    return "\n".join(lines)


# -- wheels for a machine without a registry ------------------------------------------------------
def fetch_wheels(dest: Path, python_version: str) -> int:
    """Download the wheels a GPU image lacks (ENV_DISTS, mujoco, CLI_DISTS) for CPython `python_version` on
    x86-64 Linux into `dest`, pinned to the venv's versions where it has them."""
    venv = ROOT / ".venv" / "bin" / "python"
    pins: dict[str, str] = {}
    if venv.exists():
        code = ("import json, importlib.metadata as m\nout = {}\nfor d in %r:\n    try: out[d] = m.version(d)\n"
                "    except m.PackageNotFoundError: pass\nprint(json.dumps(out))") % (list(ENV_DISTS + CLI_DISTS),)
        proc = subprocess.run([str(venv), "-c", code], capture_output=True, text=True, timeout=60)
        if proc.returncode == 0:
            pins = json.loads(proc.stdout)
    specs = [f"{d}=={pins[d]}" if d in pins else d for d in ENV_DISTS + CLI_DISTS] + [mujoco_spec(python_version)]
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version", python_version,
           "--implementation", "cp", *[x for p in PIP_PLATFORMS for x in ("--platform", p)], "-d", str(dest), *specs]
    print(f"gpu-check: fetching {' '.join(specs)} for Python {python_version} into {dest}", flush=True)
    rc = subprocess.run(cmd).returncode
    if rc == 0:
        size = sum(p.stat().st_size for p in dest.glob("*.whl")) / 2**20
        print(f"gpu-check: {len(list(dest.glob('*.whl')))} wheels, {size:.1f} MiB in {dest}; carry the folder to the GPU machine "
              "(it must be untracked: add it to .git/info/exclude) and set GPU_CHECK_WHEELS if it is not .whl/", flush=True)
    return rc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="sombench's check on a CUDA GPU (see the module docstring).")
    parser.add_argument("out", nargs="?", help="output folder (default: $OUT when set, else gpu-check/)")
    parser.add_argument("--fetch-wheels", metavar="DIR", help="only download the wheels a machine without a registry needs, into DIR")
    parser.add_argument("--python-version", default="3.12", help="with --fetch-wheels: the target's Python (default 3.12)")
    args = parser.parse_args(argv)
    if args.fetch_wheels:
        return fetch_wheels(Path(args.fetch_wheels), args.python_version)
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        # started in the background by a shell without job control: SIGINT is ignored and a child would inherit
        # that, so the training runs' stop (SIGINT, as Ctrl-C) would not reach them; restore it
        signal.signal(signal.SIGINT, signal.default_int_handler)
    rehearse = os.environ.get("GPU_CHECK_REHEARSE") == "1"
    if not rehearse:
        present, detail = gpu_present()
        if not present:
            print(f"gpu-check: no GPU on this machine ({detail}); nothing to check, exiting 0", flush=True)
            return 0
    out = Path(args.out or os.environ.get("OUT") or "gpu-check").resolve()
    out.mkdir(parents=True, exist_ok=True)
    to_device_tool = bool(os.environ.get("OUT")) and out == Path(os.environ["OUT"]).resolve()
    details = Path(tempfile.mkdtemp(prefix="gpu-check-details-")) if to_device_tool else out / "details"
    details.mkdir(parents=True, exist_ok=True)
    try:
        return Check(out, details, rehearse, keep_details=not to_device_tool).run()
    finally:
        for proc in list(_LIVE):  # interrupted: end what it started (each in its own process group)
            kill_group(proc)


if __name__ == "__main__":
    sys.exit(main())
