"""Reading results never loads training code: `sombench table`, `status` and `plot` over a store of plain
CSV and JSON files import neither torch nor the algorithms (issue 23: analysis imports neither, even
indirectly), and the helpers behind them keep their one implementation (the Student-t interval, the
shared timer)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from sombench.runs import store

HEAVY = ("torch", "algorithms")


def write_store(root) -> None:
    """Two algorithms on one paper task, two seeds each, as the trainer leaves them (config.json records
    the budget factor), plus one older record without config.json."""
    store.init_store(root)
    for algo, factor, total in (("sac", 1, 400), ("ppo", 5, 2000)):
        for seed in (0, 1):
            run = store.run_dir(root, "Reacher-v4", algo, seed)
            run.mkdir(parents=True)
            steps = [total // 2, total]
            store.atomic_write_csv(run / "eval.csv", [{"env_step": s, "return_mean": -10.0 + seed + i, "return_std": 0.0,
                                                       "episodes": 1, "wall_s": 0.0} for i, s in enumerate(steps)],
                                   store.EVAL_COLUMNS)
            store.atomic_write_json(run / "config.json", {"run": {"algo": algo, "env": "Reacher-v4", "seed": seed,
                                                                  "total_steps": total, "algo_config": {"batch_size": 256}},
                                                          "budget_factor": factor})
            store.write_state(run, state="done", env_step=total, total_steps=total, last_return=-9.0 + seed)
    old = store.run_dir(root, "Reacher-v4", "sac", 2)
    old.mkdir(parents=True)
    store.atomic_write_csv(old / "eval.csv", [{"env_step": 400, "return_mean": -8.0, "return_std": 0.0, "episodes": 1,
                                               "wall_s": 0.0}], store.EVAL_COLUMNS)
    store.write_state(old, state="done", env_step=400, total_steps=400, last_return=-8.0)


@pytest.mark.parametrize("command", [
    ["table"], ["table", "--format", "json"], ["status"], ["status", "--format", "json"], ["plot", "--out", "{tmp}/f.png"],
    ["plot", "--by", "batch_size", "--out", "{tmp}/by.png"],
])
def test_reading_results_imports_neither_torch_nor_the_algorithms(tmp_path, command):
    root = tmp_path / "results"
    write_store(root)
    args = [a.replace("{tmp}", str(tmp_path)) for a in command] + ["--results", str(root)]
    script = textwrap.dedent(f"""
        import json, sys
        from sombench.cli.main import main
        try:
            main({args!r})
        except SystemExit as exc:
            code = exc.code or 0
        else:
            code = 0
        print(json.dumps({{"code": code, "loaded": [m for m in {HEAVY!r} if m in sys.modules]}}), file=sys.stderr)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    report = json.loads(done.stderr.strip().splitlines()[-1])
    assert report["code"] == 0, done.stderr
    assert report["loaded"] == [], f"`sombench {' '.join(command)}` imported {report['loaded']}"


def test_the_analysis_layer_alone_loads_no_training_code():
    """Importing every analysis module (and the run records it reads) loads neither torch nor the algorithms."""
    script = ("import sys; import sombench.analysis.aggregate, sombench.analysis.rliable, sombench.analysis.regress, "
              "sombench.analysis.stats, sombench.runs.store, sombench.runs.outcome, sombench.render.tables, "
              "sombench.render.plots, sombench.render.plot_by, sombench.render.cost, sombench.render.regress, "
              "sombench.measure.paper; "
              f"print([m for m in {HEAVY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True).stdout
    assert out.strip() == "[]"


def test_cost_projection_times_on_latencys_path(monkeypatch):
    """The cost projection's on-the-spot timing is `sombench latency`'s (measure/timing.py), not a copy."""
    from sombench.envs import describe_env
    from sombench.measure import cost, timing
    from sombench.runs.spec import RunSpec

    calls = []
    real = timing.time_update_and_act

    def spy(cls, config, info, device, repeats, warmup=timing.WARMUP, **kwargs):
        calls.append((cls.name, info.env_id, repeats, warmup))
        return real(cls, config, info, device, repeats, warmup, **kwargs)

    monkeypatch.setattr(timing, "time_update_and_act", spy)
    spec = RunSpec("sac", "Pendulum-v1", 0, 1000, set_pairs=("batch_size=8", "hidden_sizes=8,8"))
    describe_env("Pendulum-v1")
    t = cost.measure_algo(spec.algo, spec.config(), "cpu", spec.env_id, repeats=2, warmup=1)
    assert calls == [("sac", "Pendulum-v1", 2, 1)] and t.train_ms > 0 and t.infer_ms > 0
