"""Checkpoints: the file (sombench/runs/checkpoint.py: streamed atomic write, format, verify), the replay
buffer's rows written from the buffer itself, and what an algorithm saves (its explicit state lists)."""

from __future__ import annotations

import gc
import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

import algorithms
from algorithms.common.buffer import ReplayBuffer
from algorithms.sac import SAC, SACConfig
from algorithms.som import SOM, SOMConfig
from sombench.errors import UserError
from sombench.runs import checkpoint
from sombench.runs.spec import RunSpec
from sombench.runs.store import RunFiles, Store
from sombench.train.trainer import Trainer, run_seed

CPU = torch.device("cpu")


def fill(buf: ReplayBuffer, n: int) -> None:
    for i in range(n):
        buf.add(np.full(buf.storage["obs"].shape[1], i, np.float32), np.zeros(buf.storage["action"].shape[1], np.float32),
                float(i), np.full(buf.storage["obs"].shape[1], i + 1, np.float32), False)


# -- the file -------------------------------------------------------------------------------------
def test_save_is_atomic_shared_and_round_trips(tmp_path):
    path = tmp_path / "checkpoint.pt"
    checkpoint.save(path, {"step": 7, "x": torch.arange(3.0)})
    loaded = checkpoint.load(path)
    assert loaded["format"] == checkpoint.FORMAT and loaded["step"] == 7 and torch.equal(loaded["x"], torch.arange(3.0))
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(0o666 & ~_umask())  # not mkstemp's 0600
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_failed_save_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "checkpoint.pt"
    checkpoint.save(path, {"step": 1})
    with pytest.raises(Exception):
        checkpoint.save(path, {"step": 2, "unpicklable": lambda: None})
    assert checkpoint.load(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_another_format_or_config_is_refused(tmp_path):
    spec = RunSpec(algo="sac", env_id="Pendulum-v1", seed=0, total_steps=100)
    path = tmp_path / "checkpoint.pt"
    torch.save({"format": checkpoint.FORMAT + 1, "identity": spec.identity()}, path)
    with pytest.raises(checkpoint.FormatMismatch):
        checkpoint.load(path)
    with pytest.raises(UserError, match="has checkpoint format 2, not 1"):
        checkpoint.verify(spec, path, tmp_path / "config.json")
    checkpoint.save(path, {"identity": spec.identity()})
    checkpoint.verify(spec, path, tmp_path / "config.json")
    other = RunSpec(algo="sac", env_id="Pendulum-v1", seed=0, total_steps=200)
    with pytest.raises(UserError, match="written by another config"):
        checkpoint.verify(other, path, tmp_path / "config.json")
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="unreadable"):
        checkpoint.verify(spec, path, tmp_path / "config.json")


# -- the replay buffer's rows ------------------------------------------------------------------
def test_buffer_state_shares_the_buffer_memory_full_or_partial(tmp_path):
    full, partial = ReplayBuffer(8, 3, 2), ReplayBuffer(1000, 3, 2)
    fill(full, 11)
    fill(partial, 5)
    for buf in (full, partial):
        for key, rows in buf.state_dict()["storage"].items():
            assert rows.data_ptr() == buf.storage[key].data_ptr() and rows.shape[0] == len(buf)  # no copy


def test_a_partial_buffer_writes_only_its_filled_rows(tmp_path):
    buf = ReplayBuffer(100_000, 10, 2)  # 9.2 MB of storage
    fill(buf, 100)
    checkpoint.save(tmp_path / "c.pt", {"buffer": buf.state_dict()})
    assert (tmp_path / "c.pt").stat().st_size < 100_000  # the 100 filled rows are 9.2 kB
    clone = ReplayBuffer(100_000, 10, 2)
    clone.load_state_dict(checkpoint.load(tmp_path / "c.pt")["buffer"])
    assert (clone.ptr, clone.size) == (buf.ptr, buf.size)
    for key in buf.storage:
        torch.testing.assert_close(clone.storage[key][:100], buf.storage[key][:100])


def _peak_rss_kb() -> int:
    return int(next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmHWM")).split()[1])


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's /proc to reset the peak RSS")
@pytest.mark.parametrize("filled", [1.0, 0.5])
def test_a_checkpoint_copies_no_buffer_rows_in_memory(tmp_path, filled):
    """A checkpoint streams the buffer from its own memory: the peak RSS rises by far less than the 100 MB
    of filled rows (the old path, BytesIO + getvalue + cloned rows, rose by three times that)."""
    capacity = 100_000
    buf = ReplayBuffer(capacity, 120, 6)  # (2 x 120 + 6 + 2) floats x 1e5 rows = 99 MB
    for column in buf.storage.values():
        column.fill_(1.0)  # every page committed
    buf.ptr, buf.size = 0, int(capacity * filled)
    rows_mb = buf.size * 248 * 4 / 1e6
    state = buf.state_dict()
    Path("/proc/self/clear_refs").write_text("5")
    before = _peak_rss_kb()
    checkpoint.save(tmp_path / "c.pt", {"buffer": state})
    extra_mb = (_peak_rss_kb() - before) / 1e3
    assert extra_mb < 0.2 * rows_mb, f"peak rose {extra_mb:.0f} MB writing {rows_mb:.0f} MB of rows"


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux's /proc to list the mapped files")
def test_a_resumed_trainer_keeps_no_view_of_the_checkpoint_file(tmp_path):
    """load maps the file; the restore copies every tensor it keeps (optimizer state and metric sums
    included), so the mapping, and the disk space of a checkpoint replaced later, are released at once."""
    spec = RunSpec(algo="sac", env_id="Pendulum-v1", seed=0, total_steps=200, eval_every=200, eval_episodes=1,
                   set_pairs=("hidden_sizes=8", "batch_size=8", "warmup_steps=100"))
    assert run_seed(spec, tmp_path)["status"] == "done"
    run = Store(tmp_path).run_dir(spec.key)
    trainer = Trainer(spec, run, lambda event: None)
    trainer.restore()
    assert trainer.step == 200 and trainer.algo.actor_opt.state  # restored, Adam's moments included
    gc.collect()
    assert str(RunFiles(run).checkpoint) not in Path("/proc/self/maps").read_text()
    trainer.close()


# -- what an algorithm saves -----------------------------------------------------------------------
def tiny_som(**kw) -> SOM:
    return SOM(3, 2, SOMConfig(**{"hidden_sizes": (8,), "batch_size": 4, "buffer_size": 16, "num_score_samples": 2, **kw}), CPU)


def test_derived_constants_are_recomputed_not_restored():
    a, b = tiny_som(score_scale=3.0), tiny_som(score_scale=7.0)
    state = a.state_dict()
    assert not {"w", "prior_std", "target_entropy"} & set(state)
    b.load_state_dict(state)
    assert b.w == 7.0  # b's own config's, not a's
    # a checkpoint written before the lists were explicit holds them: an equal value is ignored, another refused
    b.load_state_dict({**state, "w": 7.0, "prior_std": b.prior_std, "target_entropy": b.target_entropy})
    assert b.w == 7.0
    with pytest.raises(ValueError, match="w = 3.0, but the config gives 7.0"):
        b.load_state_dict({**state, "w": 3.0})
    with pytest.raises(ValueError, match="keys differ"):
        b.load_state_dict({**state, "no_such_thing": 1})
    with pytest.raises(ValueError, match="keys differ"):
        b.load_state_dict({k: v for k, v in state.items() if k != "updates"})


class _Listed(SAC):
    state_attributes = ("history",)

    def __init__(self, history, *args):
        super().__init__(*args)
        self.history = history


@pytest.mark.parametrize("value, kind", [((1, 2), "tuple"), (np.zeros(2), "ndarray"), (None, "NoneType")])
def test_a_checkpointed_attribute_of_another_type_is_an_error(value, kind):
    algo = _Listed(value, 3, 2, SACConfig(hidden_sizes=(8,), buffer_size=4), CPU)
    with pytest.raises(TypeError, match=f"_Listed.history is a {kind}: a checkpoint holds tensors, bool, int and float"):
        algo.state_dict()
    assert _Listed(5, 3, 2, SACConfig(hidden_sizes=(8,), buffer_size=4), CPU).state_dict()["history"] == 5


def test_a_listed_attribute_that_does_not_exist_is_an_error():
    algo = _Listed(0, 3, 2, SACConfig(hidden_sizes=(8,), buffer_size=4), CPU)
    del algo.history
    with pytest.raises(AttributeError, match="names 'history'"):
        algo.state_dict()


SAVED_BESIDES_MODULES = {
    "dacer": {"mean_std", "entropy", "last_actor_loss", "updates"},
    "dipo": set(),
    "dpmd": {"updates", "q_mean", "q_std", "last_actor_loss"},
    "mfp": set(),
    "ppo": {"rollout_obs", "rollout_action", "rollout_reward", "rollout_next_obs", "rollout_terminated", "rollout_truncated",
            "rollout_len", "updates"},
    "qsm": {"updates"},
    "qvpo": {"updates"},
    "sac": set(),
    "sdac": {"updates", "last_actor_loss", "last_weight_max"},
    "som": {"mean_std", "updates"},
}
"""Each algorithm's checkpointed attributes beyond modules, optimizers and buffer (its lists, bases included)."""
DERIVED = {"obs_dim", "act_dim", "target_entropy", "w", "prior_std"}
"""Numbers set in __init__ from the config or the env's shape: recomputed on resume."""


@pytest.mark.parametrize("name", sorted(SAVED_BESIDES_MODULES))
def test_each_algorithm_saves_its_list_and_every_other_number_or_tensor_is_derived(name):
    """A counter or a running tensor added to an algorithm without naming it in `state_attributes` fails
    here (a resumed run would silently restart it): name it there, or here in DERIVED if the config sets it."""
    cls = algorithms.get(name)
    cfg = cls.Config()
    for field, small in (("buffer_size", 8), ("batch_size", 4), ("hidden_sizes", (8,))):
        if hasattr(cfg, field):
            setattr(cfg, field, small)
    algo = cls(3, 2, cfg, CPU)
    assert set(cls.checkpointed_attributes()) == SAVED_BESIDES_MODULES[name]
    whole = {k for k, v in vars(algo).items() if isinstance(v, algo._SAVED_WHOLE)}
    assert set(algo.state_dict()) == whole | SAVED_BESIDES_MODULES[name]
    loose = {k for k, v in vars(algo).items()
             if isinstance(v, (torch.Tensor, bool, int, float, np.ndarray)) and k not in SAVED_BESIDES_MODULES[name]}
    assert loose <= DERIVED, f"{name}: {sorted(loose - DERIVED)} are neither checkpointed nor known as derived"
