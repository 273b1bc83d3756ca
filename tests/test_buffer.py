import numpy as np
import pytest
import torch

from algorithms.common.buffer import ReplayBuffer


def fill(buf: ReplayBuffer, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        buf.add(np.full(3, i, np.float32), np.full(2, -i, np.float32), float(i), np.full(3, i + 1, np.float32), i % 2 == 0)


def test_add_and_sample_consistent_rows():
    buf = ReplayBuffer(10, obs_dim=3, act_dim=2)
    fill(buf, 4)
    assert len(buf) == 4
    batch = buf.sample(64, generator=torch.Generator().manual_seed(0))
    ids = batch.reward
    assert set(ids.tolist()) <= {0.0, 1.0, 2.0, 3.0}
    torch.testing.assert_close(batch.obs, ids[:, None].expand(-1, 3))
    torch.testing.assert_close(batch.action, -ids[:, None].expand(-1, 2))
    torch.testing.assert_close(batch.next_obs, ids[:, None].expand(-1, 3) + 1)
    torch.testing.assert_close(batch.terminated, (ids % 2 == 0).float())


def test_ring_overwrites_oldest():
    buf = ReplayBuffer(5, obs_dim=3, act_dim=2)
    fill(buf, 8)
    assert len(buf) == 5 and buf.ptr == 3
    assert sorted(buf.storage["reward"].tolist()) == [3.0, 4.0, 5.0, 6.0, 7.0]


def test_sampling_is_uniform():
    buf = ReplayBuffer(4, obs_dim=3, act_dim=2)
    fill(buf, 4)
    counts = torch.bincount(buf.sample(40_000, generator=torch.Generator().manual_seed(1)).reward.long(), minlength=4)
    assert torch.all((counts - 10_000).abs() < 400)  # ~4 standard deviations


def test_state_dict_round_trip_keeps_order_and_pointer():
    buf = ReplayBuffer(6, obs_dim=3, act_dim=2)
    fill(buf, 9)
    clone = ReplayBuffer(6, obs_dim=3, act_dim=2)
    clone.load_state_dict(buf.state_dict())
    assert (clone.ptr, clone.size) == (buf.ptr, buf.size)
    for key in buf.storage:
        torch.testing.assert_close(clone.storage[key], buf.storage[key])
    fill(buf, 1, start=100)
    fill(clone, 1, start=100)
    torch.testing.assert_close(clone.storage["reward"], buf.storage["reward"])


def test_partial_buffer_saves_only_filled_rows():
    buf = ReplayBuffer(1000, obs_dim=3, act_dim=2)
    fill(buf, 7)
    assert buf.state_dict()["storage"]["obs"].shape == (7, 3)


def test_empty_sample_raises():
    with pytest.raises(RuntimeError):
        ReplayBuffer(3, 1, 1).sample(2)
