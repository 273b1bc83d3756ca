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
from sombench.measure.latency import random_batch

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
    for loop, length in (("diffusion_steps", 4), ("action_gradient_steps", 3)):  # dynamo unrolls these loops:
        if loop in fields:  # short ones keep compilation to seconds; the code compiled is the same
            small[loop] = length
    torch.manual_seed(seed)
    return cls(OBS, ACT, dataclasses.replace(cls.Config(), **small), torch.device("cpu"))


def run_updates(algo, batch, n: int) -> list[dict[str, float]]:
    out = []
    for i in range(n):
        torch.manual_seed(100 + i)
        out.append({k: float(v) for k, v in algo.update(batch).items()})
    return out


# CI compiles SAC, SOM and PPO (a Gaussian actor, the MeanFlow actor, an on-policy rollout); make test-all every algorithm
IN_CI = ("sac", "som", "ppo")


@pytest.mark.parametrize("name", [n if n in IN_CI else pytest.param(n, marks=pytest.mark.full)
                                  for n in sorted(n for n in algorithms.load_all() if not n.startswith("test-"))])
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


def test_run_compile_matches_eager_and_is_recorded(cli, tmp_path):
    """Through the CLI: the same seed eager and with --compile gives the same evaluations within float
    tolerance, and config.json records that (and what) was compiled."""
    import json

    import pandas as pd

    from conftest import run_path, tiny_run_args

    eager, compiled = tmp_path / "eager", tmp_path / "compiled"
    code, out, err = cli(tiny_run_args(eager, steps=400))
    assert code == 0, err
    code, out, err = cli(tiny_run_args(compiled, steps=400, extra=("--compile",)))
    assert code == 0, err
    assert "warning" not in err
    e = pd.read_csv(run_path(eager, "Pendulum-v1", "sac") / "eval.csv")
    c = pd.read_csv(run_path(compiled, "Pendulum-v1", "sac") / "eval.csv")
    assert list(c["env_step"]) == list(e["env_step"]) == [200, 400]
    np.testing.assert_allclose(c["return_mean"], e["return_mean"], rtol=1e-3)
    config = json.loads((run_path(compiled, "Pendulum-v1", "sac") / "config.json").read_text())
    assert config["compiled"] == [{"from_step": 0, "compile": True, "methods": ["act_step", "update"]}]
    config = json.loads((run_path(eager, "Pendulum-v1", "sac") / "config.json").read_text())
    assert config["compiled"] == [{"from_step": 0, "compile": False, "methods": []}]
@pytest.mark.full
def test_latency_compiled_columns_bare_forwards_and_breakdown(cli, tmp_path):
    import json

    code, out, err = cli(["latency", "--algos", "som", "--env", "Pendulum-v1", "--repeats", "2", "--threads", "1",
                          "--device", "cpu", "--compile", "--breakdown", "--format", "json", "--results", str(tmp_path / "r")])
    assert code == 0, err
    payload = json.loads(out)
    [row] = payload["rows"]
    assert payload["compiled"] is True
    assert row["train_compiled_ms_mean"] > 0 and row["infer_compiled_ms_median"] > 0
    assert row["compiled_methods"] == "act_step+update_step"
    assert row["bare_forwards"] == "actor+critic" and row["bare_forwards_ms_median"] > 0
    [acting] = payload["acting_vs_bare"]
    assert acting["Algorithm"] == "som" and acting["batch"] == "32"
    parts = {p["part"]: p for p in payload["breakdown"]["som"]}
    assert list(parts) == ["whole update", "critic step", "best-of-N next action", "actor step", "score (Eq. 5)", "targets and alpha"]
    assert parts["score (Eq. 5)"]["parent"] == "actor step" and parts["targets and alpha"]["per_update"] == 0.5
    assert parts["targets and alpha"]["bare_products_ms_median"] is None
    for name in ("whole update", "critic step", "actor step", "score (Eq. 5)"):
        assert parts[name]["measured_ms_median"] > 0 and parts[name]["bare_products_ms_median"] > 0
