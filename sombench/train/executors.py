"""Where a sweep's runs execute. Each launcher takes RunSpecs and calls the same `run_seed` that
`sombench run` calls, wherever the run lands, so store layout, locks, resume and skipping are the
runner's, not the launcher's. No launcher schedules anything itself: the local one is a process pool,
Ray schedules tasks by their CPU/GPU request, submitit submits Slurm jobs (a job array) or, where no
Slurm exists, runs them with its local executor.

A launcher: `start(specs, results)`, then `poll() -> {index: outcome}` for the runs that ended since
the last poll (outcome as `run_seed` returns it, or `failed` with the launcher's reason), `stop()`
on Ctrl-C or an error (cancel what has not ended), `close()` always, `describe()` for the title.

Ray and submitit are optional extras: `pip install -e '.[ray]'` / `'.[slurm]'`; without them the
launcher's constructor raises UserError naming the extra (one line, exit 2).
"""

from __future__ import annotations

import concurrent.futures as futures
import contextlib
import multiprocessing
import os
import queue
import re
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sombench.errors import InvalidValue, UserError
from sombench.runs.outcome import Outcome

# -- stopping -----------------------------------------------------------------------------------
class Stopped(KeyboardInterrupt):
    """A stop signal (SIGINT, SIGTERM, SIGHUP) raised as KeyboardInterrupt, so that every path Ctrl-C takes
    (the trainer marks its run `interrupted` and releases the lock, launchers stop their workers, the CLI
    prints the rerun line) is the path every stop takes. `signum`: the signal's number."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


STOPPED_BY: list[int] = []
"""The stop signals this process has caught, in order (the CLI's exit code is 128 + the last)."""
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


@contextlib.contextmanager
def stop_on_signals(once: bool = False):
    """While the block runs, SIGINT, SIGTERM and SIGHUP raise `Stopped` in this (main) thread; the previous
    handlers come back after it. SIGINT is handled even where the process inherited it ignored (a shell
    starts background jobs so; a run stopped by any signal saves its state and resumes, so stopping loses
    nothing); SIGHUP stays ignored where it was (`nohup`). `once`: raise for the first signal only and
    ignore the rest, so a worker's clean-up is not cut short by the signal its parent forwards after the
    terminal's. Outside the main thread (a Ray actor thread) it changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired = []

    def handler(signum, frame):
        if once and fired:
            return
        fired.append(signum)
        STOPPED_BY.append(signum)
        raise Stopped(signum)

    previous = {}
    for sig in STOP_SIGNALS:
        if sig != signal.SIGINT and signal.getsignal(sig) == signal.SIG_IGN:
            continue
        previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


_RUNNING = threading.Event()
"""Set while this process trains a seed in `_run`."""
_ORPHANED = threading.Event()
"""Set once the process that started this worker is gone."""


def _watch_parent(interval: float = 0.5, grace: float = 300.0) -> None:
    """In a worker: a daemon thread that notices when its parent dies (the worker is re-parented). A worker
    training a seed gets SIGINT, so the seed is saved as interrupted and its lock released, and `_run` then
    ends the process; an idle one ends at once. Should the run not end within `grace` seconds, the process
    ends anyway (the run's last checkpoint stands)."""
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(interval)
        _ORPHANED.set()
        if not _RUNNING.is_set():
            os._exit(0)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(grace)
        os._exit(1)

    threading.Thread(target=watch, name="sombench-parent-watch", daemon=True).start()


_WATCHING: list[bool] = []
"""Non-empty once this process watches its parent."""
_EVENTS = None
"""A pool worker's event queue, handed over when the worker is spawned (`_pool_worker`)."""


def _pool_worker(events) -> None:
    """A pool worker's initializer: keep the event queue, ignore SIGINT while idle (a terminal's Ctrl-C
    reaches every process of its group; an idle worker has nothing to save and leaves when the pool shuts
    down; SIGTERM still ends it), and stop when the parent dies."""
    global _EVENTS
    _EVENTS = events
    _WATCHING.append(True)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _watch_parent()


def _run(spec, root: str, events=None, index: int = 0) -> dict[str, Any]:
    """The task body every launcher runs: one seed through the trainer (skip, resume or train). With
    `events` (a queue; a pool worker's own when None), the trainer's progress events go there, tagged with
    the run's `index`. A stop signal stops the run as Ctrl-C does, and so does the death of the process
    that started this one."""
    from sombench.train.trainer import run_seed

    if not _WATCHING:  # a Ray task or submitit job: watch the parent from the first run
        _WATCHING.append(True)
        _watch_parent()
    events = events if events is not None else _EVENTS
    report = None if events is None else (lambda event: events.put({**event, "index": index}))
    _RUNNING.set()
    try:
        if _ORPHANED.is_set():
            raise Stopped(signal.SIGINT)
        with stop_on_signals(once=True):
            return run_seed(spec, Path(root), report)
    finally:
        _RUNNING.clear()
        if _ORPHANED.is_set():  # nobody is left to take the outcome: the run is saved, leave
            os._exit(0)


def _failed(spec, reason: str) -> dict[str, Any]:
    return {"seed": spec.seed, "status": Outcome.FAILED, "reason": reason}


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else ''}"[:300]


Event = dict[str, Any]


class LocalLauncher:
    """Runs on this machine: a pool of `workers` spawned processes, or, with `in_process`, one run
    after another in this process (what `sombench run` does for one worker, so Ctrl-C and tracebacks
    stay in the user's process). `on_event(event)` receives the trainer's progress events (start,
    progress, end; each with the run's `index` in the list given to `start`)."""

    def __init__(self, workers: int, *, in_process: bool = False, on_event: Callable[[Event], None] | None = None):
        self.workers, self.in_process, self.on_event = workers, in_process, on_event
        self.pool: futures.ProcessPoolExecutor | None = None
        self.events = None
        self.pending: dict[futures.Future, int] = {}
        self.queue: list[int] = []
        self.specs: list = []
        self.results = ""

    def describe(self) -> str:
        return "this process" if self.in_process else f"a local pool of {self.workers} process(es)"

    def start(self, specs: list, results: Path) -> None:
        self.specs, self.results = specs, str(results)
        if not specs:
            return
        if self.in_process:
            self.queue = list(range(len(specs)))
            return
        ctx = multiprocessing.get_context("spawn")
        # the queue goes to each worker as it is spawned (no manager process that could outlive us)
        self.events = ctx.Queue() if self.on_event is not None else None
        self.pool = futures.ProcessPoolExecutor(max_workers=min(self.workers, len(specs)), mp_context=ctx,
                                                initializer=_pool_worker, initargs=(self.events,))
        self.pending = {self.pool.submit(_run, spec, self.results, None, i): i for i, spec in enumerate(specs)}

    def _drain(self) -> None:
        if self.events is None:
            return
        with contextlib.suppress(queue.Empty, EOFError, OSError):
            while True:
                self.on_event(self.events.get_nowait())

    def poll(self) -> dict[int, dict[str, Any]]:
        """The runs that ended since the last poll. In process, this runs the next run to its end."""
        if self.in_process:
            if not self.queue:
                return {}
            i = self.queue.pop(0)
            report = None if self.on_event is None else (lambda event, i=i: self.on_event({**event, "index": i}))
            from sombench.train.trainer import run_seed

            return {i: run_seed(self.specs[i], Path(self.results), report)}
        out = {}
        done = [f for f in self.pending if f.done()]
        self._drain()
        for fut in done:
            i = self.pending.pop(fut)
            try:
                out[i] = fut.result()
            except Exception as exc:  # a worker that died outright (killed by the OS)
                out[i] = _failed(self.specs[i], f"worker died: {_one_line(exc)}")
        return out

    def stop(self) -> None:
        """Stop every running seed as Ctrl-C does (SIGINT to each worker: the stop may have come as SIGTERM
        or SIGHUP to this process alone), wait for them to save their state, and cancel the queued ones."""
        self.queue.clear()
        if self.pool is not None:
            processes = list((getattr(self.pool, "_processes", None) or {}).values())
            for process in processes:
                with contextlib.suppress(OSError, ValueError):
                    if process.is_alive():
                        os.kill(process.pid, signal.SIGINT)
            self.pool.shutdown(wait=False, cancel_futures=True)
            while any(process.is_alive() for process in processes):
                self._drain()  # a worker leaves only once its queued events are read
                time.sleep(0.05)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = None
        self._drain()
        if self.events is not None:
            self.events.close()
            self.events.join_thread()
            self.events = None


def dispatch(specs: list, results: Path, launcher, known: dict[int, dict[str, Any]] | None = None,
             on_update: Callable[[dict[int, dict[str, Any]], set[int]], None] | None = None,
             refresh: float = 0.2) -> list[dict[str, Any]]:
    """Send every spec whose outcome is not already `known` to `launcher` and poll it until all have ended;
    `on_update(outcomes, launched)` after each poll (a live display). One outcome dict per spec, in order.
    On any exception (Ctrl-C included) the launcher is stopped, then the exception propagates."""
    outcomes = dict(known or {})
    todo = [i for i in range(len(specs)) if i not in outcomes]
    launched: set[int] = set()
    update = on_update or (lambda outcomes, launched: None)
    with stop_on_signals():
        return _dispatch(specs, results, launcher, outcomes, todo, launched, update, refresh)


def _dispatch(specs, results, launcher, outcomes, todo, launched, update, refresh) -> list[dict[str, Any]]:
    try:
        update(outcomes, launched)
        launcher.start([specs[i] for i in todo], results)
        launched.update(todo)
        while len(outcomes) < len(specs):
            for j, outcome in launcher.poll().items():
                outcomes[todo[j]] = outcome
            update(outcomes, launched)
            if len(outcomes) < len(specs):
                time.sleep(refresh)
    except BaseException:
        launcher.stop()
        update(outcomes, launched)
        raise
    finally:
        launcher.close()
    update(outcomes, launched)
    return [outcomes[i] for i in range(len(specs))]


class RayLauncher:
    """One Ray task per run, with its CPU/GPU request. `address` None starts a local Ray instance bound to
    127.0.0.1 (no dashboard) with `num_cpus` CPUs; `auto` or `ray://host:port` joins a cluster (whose
    nodes must have sombench installed and see the results folder at the same path)."""

    def __init__(self, address: str | None, cpus_per_run: float, gpus_per_run: float, num_cpus: int | None = None,
                 max_retries: int = 1):
        try:
            import ray  # noqa: F401
        except ImportError:
            raise UserError("the ray launcher needs Ray: pip install -e '.[ray]' (or pip install ray)") from None
        self.address, self.cpus, self.gpus = address, cpus_per_run, gpus_per_run
        self.num_cpus, self.max_retries = num_cpus, max_retries
        self.refs: dict[Any, int] = {}
        self.specs: list = []
        self.started_here = False

    def describe(self) -> str:
        where = f"Ray at {self.address}" if self.address else f"a local Ray instance ({self.num_cpus} CPUs)"
        return f"{where}, {self.cpus:g} CPU{' + %g GPU' % self.gpus if self.gpus else ''} per run"

    def start(self, specs: list, results: Path) -> None:
        import ray

        self.specs = specs
        if not specs:
            return
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no phoning home from a benchmark harness
        if not ray.is_initialized():
            if self.address:
                ray.init(address=self.address, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
            else:
                ray.init(num_cpus=self.num_cpus, num_gpus=None, include_dashboard=False, log_to_driver=False,
                         logging_level="WARNING", _node_ip_address="127.0.0.1")
            self.started_here = True
        task = ray.remote(num_cpus=self.cpus, num_gpus=self.gpus, max_retries=self.max_retries)(_run)
        self.refs = {task.remote(spec, str(results)): i for i, spec in enumerate(specs)}

    def poll(self) -> dict[int, dict[str, Any]]:
        import ray

        out: dict[int, dict[str, Any]] = {}
        if not self.refs:
            return out
        ready, _ = ray.wait(list(self.refs), num_returns=len(self.refs), timeout=0)
        for ref in ready:
            i = self.refs.pop(ref)
            try:
                out[i] = ray.get(ref)
            except Exception as exc:  # the task's worker died (and its retries) or the node was lost
                out[i] = _failed(self.specs[i], f"ray task failed: {_one_line(exc)}")
        return out

    def stop(self) -> None:
        import ray

        for ref in list(self.refs):
            try:
                ray.cancel(ref)  # SIGINT to a running task: the runner marks it interrupted
            except Exception:
                pass

    def close(self) -> None:
        import ray

        if self.started_here and ray.is_initialized():
            ray.shutdown()


def parse_time(text: str) -> int:
    """Slurm's --time forms to minutes: MM, HH:MM:SS, D-HH[:MM[:SS]]."""
    m = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text.strip())
    if not m:
        raise InvalidValue("time", f"{text!r}: use minutes, HH:MM:SS or D-HH:MM:SS")
    days, a, b, c = (int(g) if g else None for g in m.groups())
    if days is None and b is None:
        minutes = a  # plain minutes
    elif days is None and c is None:
        minutes = a * 60 + b  # HH:MM (read as hours and minutes)
    elif days is None:
        minutes = a * 60 + b + (1 if c else 0)
    else:
        minutes = days * 1440 + a * 60 + (b or 0) + (1 if c else 0)
    if minutes <= 0:
        raise InvalidValue("time", f"{text!r} must be positive")
    return minutes


class SlurmLauncher:
    """submitit's AutoExecutor: on a Slurm cluster one job array (`--partition`, `--time`,
    `--gpus-per-run`, `--cpus-per-run`, at most `workers` array tasks at once); where no Slurm exists,
    submitit's local executor, which runs each job as a local process (at most `workers` at once).
    Job logs and pickles go to `log_dir`."""

    def __init__(self, log_dir: Path, partition: str | None, time_minutes: int, cpus_per_run: int, gpus_per_run: int,
                 workers: int, cluster: str | None = None):
        try:
            import submitit
        except ImportError:
            raise UserError("the slurm launcher needs submitit: pip install -e '.[slurm]' (or pip install submitit)") from None
        cluster = cluster or submitit.AutoExecutor.which()  # slurm where sbatch exists, else local
        self.log_dir, self.partition, self.time_minutes = Path(log_dir), partition, time_minutes
        self.cpus, self.gpus, self.workers, self.cluster = cpus_per_run, gpus_per_run, workers, cluster
        self.executor = None
        self.jobs: dict[int, Any] = {}
        self.queue: list[int] = []
        self.specs: list = []
        self.results = ""

    def _executor(self):
        import submitit

        executor = submitit.AutoExecutor(folder=str(self.log_dir / "%j"), cluster=self.cluster)
        params: dict[str, Any] = {"name": "sombench", "timeout_min": self.time_minutes, "cpus_per_task": self.cpus,
                                  "slurm_array_parallelism": self.workers}
        if self.gpus:
            params["gpus_per_node"] = self.gpus
        if self.partition:
            params["slurm_partition"] = self.partition
        executor.update_parameters(**params)
        return executor

    def describe(self) -> str:
        cluster = self.cluster
        kind = "Slurm job array" if cluster == "slurm" else f"submitit's {cluster} executor"
        return f"{kind}, {self.cpus} CPU{' + %d GPU' % self.gpus if self.gpus else ''} per run, {self.workers} at once"

    def start(self, specs: list, results: Path) -> None:
        self.specs, self.results = specs, str(results)
        if not specs:
            return
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.executor = self._executor()
        if self.executor.cluster == "slurm":
            jobs = self.executor.map_array(_run, specs, [self.results] * len(specs))
            self.jobs = dict(enumerate(jobs))
        else:
            self.queue = list(range(len(specs)))
            self._fill()

    def _fill(self) -> None:
        while self.queue and len(self.jobs) < self.workers:
            i = self.queue.pop(0)
            self.jobs[i] = self.executor.submit(_run, self.specs[i], self.results)

    def poll(self) -> dict[int, dict[str, Any]]:
        out: dict[int, dict[str, Any]] = {}
        for i, job in list(self.jobs.items()):
            if not job.done():
                continue
            del self.jobs[i]
            try:
                out[i] = job.result()
            except Exception as exc:  # the job failed, timed out or was cancelled; its log says why
                out[i] = _failed(self.specs[i], f"job {job.job_id} failed: {_one_line(exc)} (logs in {self.log_dir})")
        self._fill()
        return out

    def stop(self) -> None:
        self.queue.clear()
        for job in self.jobs.values():
            try:
                job.cancel(check=False)
            except Exception:
                pass

    def close(self) -> None:
        pass
