"""Environments: the paper's MuJoCo v4 tasks with their budgets, and validation of any Gymnasium id.

Any registered Gymnasium environment with a continuous (Box) action space of finite bounds runs by
its id; the paper's tasks additionally carry their training budget (Section 5.1). Env packages plug
in through the `sombench.envs` entry-point group: each entry is a function `ensure_registered(env_id)`
that registers the id with Gymnasium if it is one of its own (the paper's bandits are such a package,
sombench.bandit), called before an id is looked up.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.metadata
import warnings

import gymnasium as gym
import numpy as np

from sombench.errors import UserError

# Gymnasium 1.x still registers the v4 MuJoCo tasks the paper uses but warns on every `make` that v5
# exists. The paper reports v4, so v4 is what we run: silence exactly that warning, once, here.
warnings.filterwarnings("ignore", message=r".*is out of date\. You should consider upgrading", category=DeprecationWarning)


@dataclasses.dataclass(frozen=True)
class Task:
    env_id: str
    budget: int
    """Env steps of a full run (SOM paper Section 5.1)."""
    description: str


PAPER_TASKS: dict[str, Task] = {
    t.env_id: t
    for t in [
        Task("Ant-v4", 5_000_000, "quadruped locomotion (27-d obs, 8-d action)"),
        Task("HalfCheetah-v4", 5_000_000, "planar running (17-d obs, 6-d action)"),
        Task("Hopper-v4", 5_000_000, "planar hopping (11-d obs, 3-d action)"),
        Task("Humanoid-v4", 5_000_000, "humanoid locomotion (376-d obs, 17-d action)"),
        Task("Walker2d-v4", 5_000_000, "planar walking (17-d obs, 6-d action)"),
        Task("Swimmer-v4", 5_000_000, "swimming in viscous fluid (8-d obs, 2-d action)"),
        Task("InvertedDoublePendulum-v4", 1_000_000, "balance a double pendulum on a cart (11-d obs, 1-d action)"),
        Task("Pusher-v4", 1_000_000, "arm pushes an object to a goal (23-d obs, 7-d action)"),
        Task("Reacher-v4", 1_000_000, "two-link arm reaches a target (10-d obs, 2-d action)"),
    ]
}


@dataclasses.dataclass(frozen=True)
class EnvInfo:
    env_id: str
    obs_dim: int
    act_dim: int
    act_low: np.ndarray
    act_high: np.ndarray
    default_steps: int | None
    act_shape: tuple[int, ...] | None = None
    """The action Box's own shape; the algorithm acts on its flat (act_dim,) vector."""
    act_dtype: np.dtype = np.dtype(np.float32)
    """The action Box's dtype (always floating: others are refused); algorithms.common.spaces.ActionScaler
    maps the algorithm's flat [-1, 1] vector to this shape and dtype."""


DEFAULT_EPISODE_LIMIT = 1000


@functools.cache
def _env_plugins() -> tuple:
    return tuple(ep.load() for ep in importlib.metadata.entry_points(group="sombench.envs"))


def ensure_registered(env_id: str) -> None:
    """Let every env plugin register `env_id` if it is one of its own (e.g. a perturbed bandit id)."""
    for plugin in _env_plugins():
        if plugin(env_id):
            return


def make_env(env_id: str, render_mode: str | None = None) -> gym.Env:
    """A fresh instance of `env_id` (not yet reset); `render_mode` as Gymnasium's (`rgb_array` for videos).

    An env registered without a time limit gets one of 1,000 steps (the MuJoCo convention), so an
    evaluation episode always ends; its truncation is bootstrapped through like any other.
    """
    ensure_registered(env_id)
    env = gym.make(env_id, render_mode=render_mode) if render_mode else gym.make(env_id)
    if env.spec is None or env.spec.max_episode_steps is None:
        env = gym.wrappers.TimeLimit(env, DEFAULT_EPISODE_LIMIT)
    return env


def describe_env(env_id: str) -> EnvInfo:
    """Check that `env_id` is runnable and return its shapes; UserError with a remedy otherwise."""
    ensure_registered(env_id)
    try:
        gym.spec(env_id)
    except Exception:
        known = ", ".join(PAPER_TASKS)
        raise UserError(
            f"unknown environment {env_id!r}: give a registered Gymnasium id (paper tasks: {known}; `sombench envs` lists them)"
        ) from None
    try:
        env = make_env(env_id)
    except Exception as exc:  # e.g. a missing optional dependency of the env
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot create environment {env_id!r}: {first}") from None
    try:
        act_space, obs_space = env.action_space, env.observation_space
        if not isinstance(act_space, gym.spaces.Box):
            raise UserError(f"{env_id} has a {type(act_space).__name__} action space; sombench needs a continuous (Box) one")
        if not (np.all(np.isfinite(act_space.low)) and np.all(np.isfinite(act_space.high))):
            raise UserError(f"{env_id} has an unbounded action space; sombench needs finite bounds to scale actions")
        if not np.issubdtype(act_space.dtype, np.floating):
            raise UserError(f"{env_id} has an action Box of dtype {act_space.dtype}; sombench needs a floating-point one")
        if not isinstance(obs_space, gym.spaces.Box):
            raise UserError(f"{env_id} has a {type(obs_space).__name__} observation space; sombench needs a Box one"
                            " (flatten it with a Gymnasium wrapper in the env's registration)")
        task = PAPER_TASKS.get(env_id)
        return EnvInfo(
            env_id=env_id,
            obs_dim=int(np.prod(obs_space.shape)),
            act_dim=int(np.prod(act_space.shape)),
            act_low=np.asarray(act_space.low, dtype=np.float64).reshape(-1),
            act_high=np.asarray(act_space.high, dtype=np.float64).reshape(-1),
            default_steps=task.budget if task else None,
            act_shape=tuple(int(n) for n in act_space.shape),
            act_dtype=np.dtype(act_space.dtype),
        )
    finally:
        env.close()


# -- training envs: N stepped together, their state saved and restored ----------------------------
VECTOR_MODES = ("sync", "async")
"""`--vector-mode`: Gymnasium's SyncVectorEnv (all envs in the trainer's process) or AsyncVectorEnv (one
worker process per env). Both step the same envs from the same seeds and give the same numbers."""


def vector_seeds(seed: int, num_envs: int) -> list[int]:
    """The first-reset seed of each of a run's `num_envs` training envs: the run's seed for env 0 (so one
    env is the single-env run) and 32 bits of SeedSequence([seed, k]) for env k >= 1. Not Gymnasium's
    `seed + k`: with it, env 1 of seed 0 would replay env 0 of seed 1, and seeds would share episodes."""
    return [seed if k == 0 else int(np.random.SeedSequence([seed, k]).generate_state(1)[0]) for k in range(num_envs)]


def make_training_env(env_id: str) -> gym.Env:
    """`make_env(env_id)` inside a `Snapshot` wrapper (what a vector env's worker builds)."""
    return Snapshot(make_env(env_id))


def _worker_env(env_id: str, creator: int) -> gym.Env:
    """`make_training_env` in an async worker process, which first gives up the signal handlers it inherited: the
    trainer's process decides when to stop (Ctrl-C reaches the whole process group, so the worker ignores SIGINT)
    and ends its workers with SIGTERM, which then ends them silently instead of raising the harness's `Stopped`.
    In the process that built the vector env (`creator`, whose pid Gymnasium's own dummy env is made in, to read
    the spaces) nothing changes."""
    import os
    import signal

    if os.getpid() != creator:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for name in ("SIGTERM", "SIGHUP"):
            if hasattr(signal, name):
                signal.signal(getattr(signal, name), signal.SIG_DFL)
    return make_training_env(env_id)


def make_vector_env(env_id: str, num_envs: int, mode: str = "sync") -> gym.vector.VectorEnv:
    """`num_envs` training envs of `env_id` as one Gymnasium vector env, autoreset DISABLED: the trainer
    resets the envs that ended (`reset(options={"reset_mask": ...})`) before the next vector step, so no
    step of a vector env is an autoreset step and a finished env's last observation is the step's own.
    `mode` "async" runs each env in a worker process (fork on Linux, so env ids registered at run time
    reach the workers; the platform's default elsewhere)."""
    from functools import partial

    mode_ = gym.vector.AutoresetMode.DISABLED
    if mode == "sync":
        return gym.vector.SyncVectorEnv([partial(make_training_env, env_id) for _ in range(num_envs)], autoreset_mode=mode_)
    import sys

    context = "fork" if sys.platform.startswith("linux") else None
    import os

    fns = [partial(_worker_env, env_id, os.getpid()) for _ in range(num_envs)]
    return gym.vector.AsyncVectorEnv(fns, autoreset_mode=mode_, context=context)


_PLAIN = (bool, int, float, complex, str, bytes, type(None), np.generic)


def _plain(value) -> bool:
    """Whether `value` is data a snapshot copies: numbers, strings, numeric arrays, and tuples, lists and
    dicts of them (not spaces, specs, simulators, renderers, generators or callables)."""
    if isinstance(value, _PLAIN):
        return True
    if isinstance(value, np.ndarray):
        return value.dtype != object
    if isinstance(value, (tuple, list)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def env_snapshot(env: gym.Env) -> dict:
    """A copy of an env's dynamic state, enough to continue it exactly (`restore_env`): the plain attributes
    (`_plain`) of every wrapper and of the base env (a TimeLimit's elapsed steps, Pendulum's state, ...), the
    base env's random stream, and for a MuJoCo env all of its mjData (pickled; about 66 KB for Ant-v4). Not
    only the integration state (mj_getState): an env reads quantities the last mj_step derived (Ant-v4's
    torso position before a step is the last substep's forward kinematics), which that state cannot give
    back. An env keeping
    state elsewhere (another object, a C library other than MuJoCo) is not captured: a run of it resumes
    exactly only from an episode boundary (one env: where checkpoints are taken)."""
    import copy

    layers, layer = [], env
    while True:
        layers.append({k: copy.deepcopy(v) for k, v in vars(layer).items() if k != "_np_random" and _plain(v)})
        if not isinstance(layer, gym.Wrapper):
            break
        layer = layer.env
    rng = getattr(layer, "_np_random", None)
    snap = {"layers": layers, "np_random": None if rng is None else rng.bit_generator.state}
    data = getattr(layer, "data", None)
    if type(data).__module__.startswith("mujoco"):
        import pickle

        snap["mujoco_data"] = pickle.dumps(data)  # all of mjData: the step's derived quantities too
    return snap


def restore_env(env: gym.Env, snap: dict) -> None:
    """Put back what `env_snapshot` took, into an env built the same way (ValueError if its wrappers differ)."""
    import copy

    layer, layers = env, snap["layers"]
    for i, values in enumerate(layers):
        for k, v in values.items():
            setattr(layer, k, copy.deepcopy(v))
        if i + 1 < len(layers):
            if not isinstance(layer, gym.Wrapper):
                raise ValueError("the env's wrappers differ from the snapshot's")
            layer = layer.env
    if snap["np_random"] is not None:
        state = snap["np_random"]
        rng = np.random.Generator(getattr(np.random, state["bit_generator"])())
        rng.bit_generator.state = state
        layer._np_random = rng
    if "mujoco_data" in snap:
        import pickle

        layer.data = pickle.loads(snap["mujoco_data"])
        renderer = getattr(layer, "mujoco_renderer", None)
        if renderer is not None and hasattr(renderer, "data"):
            renderer.data = layer.data

class Snapshot(gym.Wrapper):
    """Exposes `env_snapshot` / `restore_env` as one attribute, `snapshot`, which a vector env reads with
    `get_attr("snapshot")` and writes per env with `set_attr("snapshot", [...])`, in worker processes too."""

    @property
    def snapshot(self) -> dict:
        return env_snapshot(self.env)

    @snapshot.setter
    def snapshot(self, snap: dict) -> None:
        restore_env(self.env, snap)

    def set_wrapper_attr(self, name: str, value, *, force: bool = True) -> bool:
        """What a vector env's `set_attr` calls. Gymnasium's first tests `hasattr(self, name)`, which would take a
        snapshot just to overwrite it, and pickling the mjData of an env never reset crashes mujoco 2.3.7."""
        if name == "snapshot":
            restore_env(self.env, value)
            return True
        return super().set_wrapper_attr(name, value, force=force)
