"""--compile: torch.compile of each algorithm's act and update paths gives the eager results within float
tolerance (random draws use eager's generator: algorithms/common/compile.py) with no frame left to eager, and
falls back to eager with one warning where the device
cannot compile."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import algorithms
from algorithms.common import compile as compile_mod
from sombench.latency import random_batch

pytestmark = pytest.mark.slow  # each algorithm compiles for tens of seconds on a CPU

OBS, ACT = 3, 2
SMALL = {"hidden_sizes": (16, 16), "batch_size": 8}


def build(name: str, seed: int = 0):
    cls = algorithms.load_all()[name]
    fields = {f.name for f in dataclasses.fields(cls.Config)}
    small = {k: v for k, v in SMALL.items() if k in fields and not (name == "ppo" and k == "batch_size")}
    for delay in ("policy_delay", "alpha_delay", "target_delay"):  # short delays: both phases of each run here
        if delay in fields:
            small[delay] = 2
    torch.manual_seed(seed)
    return cls(OBS, ACT, dataclasses.replace(cls.Config(), **small), torch.device("cpu"))


def run_updates(algo, batch, n: int) -> list[dict[str, float]]:
    out = []
    for i in range(n):
        torch.manual_seed(100 + i)
        out.append({k: float(v) for k, v in algo.update(batch).items()})
    return out


@pytest.mark.parametrize("name", sorted(n for n in algorithms.load_all() if not n.startswith("test-")))
def test_compiled_matches_eager(name):
    eager, compiled = build(name), build(name)
    names = compiled.compile(warn=lambda m: pytest.fail(m))
    assert names and set(names) == set(type(compiled).compiled_methods)
    batch = random_batch(OBS, ACT, getattr(eager.config, "batch_size", 8) if name != "ppo" else 64, torch.device("cpu"))

    m_eager, m_compiled = run_updates(eager, batch, 4), run_updates(compiled, batch, 4)
    for a, b in zip(m_eager, m_compiled):
        assert a.keys() == b.keys()
        for key in a:
            assert b[key] == pytest.approx(a[key], rel=1e-3, abs=1e-4), key
    for (key, p), q in zip(eager.state_dict().items(), compiled.state_dict().values()):
        if isinstance(p, dict):
            continue
        if isinstance(p, torch.Tensor):
            assert torch.allclose(p, q, rtol=1e-3, atol=1e-4), key
    obs = np.linspace(-1, 1, OBS).astype(np.float32)
    for deterministic in (True, False):
        torch.manual_seed(7)
        a = eager.act(obs, deterministic)
        torch.manual_seed(7)
        b = compiled.act(obs, deterministic)
        np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-4)


def test_no_compiler_falls_back_with_one_warning(monkeypatch):
    monkeypatch.setattr(compile_mod.shutil, "which", lambda name: None)
    messages = []
    algo = build("sac")
    assert algo.compile(warn=messages.append) == []
    assert len(messages) == 1 and "no C++ compiler" in messages[0] and "\n" not in messages[0]
    batch = random_batch(OBS, ACT, 8, torch.device("cpu"))
    algo.update(batch)  # eager, unchanged
    assert not isinstance(algo.update, compile_mod.CompiledMethod)


def test_failed_compilation_runs_eagerly_with_one_warning():
    """A backend that raises: each call still returns the eager result and runs its side effect once
    (torch falls back per frame, so nothing that ran is repeated), and the failure is one warning line."""
    messages: list[str] = []

    def broken_backend(gm, example_inputs):
        raise RuntimeError("backend exploded\nsecond line")

    class Toy:
        calls = 0

        def f(self, x):
            self.calls += 1
            return torch.sin(x) + 1

    toy = Toy()
    compile_mod.configure_compiler(messages.append)
    method = compile_mod.CompiledMethod(toy.f, torch.device("cpu"), messages.append)
    method.compiled = torch.compile(toy.f, backend=broken_backend)
    x = torch.linspace(0, 1, 5)
    for i in range(3):
        assert torch.equal(method(x), torch.sin(x) + 1)
        assert toy.calls == i + 1
    assert len(messages) == 1, messages
    assert "backend exploded" in messages[0] and "\n" not in messages[0]
