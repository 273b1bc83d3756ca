"""`sombench latency` (Table 2): the timer, its statistics, the stored CSV, the paper comparison, bad input."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import gc
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

import algorithms
from conftest import assert_one_line_error, tree
from sombench.measure import latency as lat
from sombench.measure import timing
from sombench.render import latency as render_lat


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """`--threads` changes torch's thread count for the whole (test) process: put it back."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def stored_csvs(results):
    return sorted((results / "latency").glob("*.csv"))


# -- the timer and its statistics ---------------------------------------------------------------
def test_timing_stats_by_hand():
    seconds = [0.010, 0.012, 0.011, 0.015, 0.009]
    ms = np.array(seconds) * 1e3
    half = stats.t.ppf(0.975, df=4) * ms.std(ddof=1) / math.sqrt(5)
    t = timing.timing_stats(seconds)
    assert t.mean_ms == pytest.approx(11.4)
    assert t.ci_ms == pytest.approx(half)
    assert t.ci_ms == pytest.approx(2.776445 * math.sqrt(5.3) / math.sqrt(5), rel=1e-6)  # t(0.975, 4 dof), s^2 = 21.2/4
    assert t.median_ms == pytest.approx(11.0)
    assert t.n == 5
    one = timing.timing_stats([0.002])
    assert one.mean_ms == pytest.approx(2.0) and math.isnan(one.ci_ms) and one.median_ms == pytest.approx(2.0)


def test_time_calls_counts_calls_and_syncs_around_each_region(monkeypatch):
    events: list[str] = []
    clock = [100.0]

    def fn():
        events.append("f")
        clock[0] += 0.003  # every call takes exactly 3 ms of fake time

    def sync():
        events.append(f"s@{clock[0]:.3f}")

    monkeypatch.setattr(timing.time, "perf_counter", lambda: clock[0])
    seconds = timing.time_calls(fn, repeats=3, warmup=2, sync=sync, calls_per_repeat=2)
    # warm-up: 2 repeats' worth of untimed calls, no sync; then sync, 2 timed calls, sync, per repeat
    assert [e[0] for e in events] == ["f"] * 4 + ["s", "f", "f", "s"] * 3
    assert seconds.shape == (3,)
    assert seconds == pytest.approx([0.003] * 3)  # mean per call, not per repeat
    assert gc.isenabled()  # switched off only while timing


def test_time_calls_measures_real_time():
    import time

    seconds = timing.time_calls(lambda: time.sleep(0.002), repeats=3, warmup=0)
    assert seconds.shape == (3,) and np.all(seconds >= 0.0019)
    with pytest.raises(ValueError):
        timing.time_calls(lambda: None, repeats=0)


# -- the paper's Table 2 and the comparison -----------------------------------------------------
def test_shipped_paper_table2():
    paper = lat.paper_table2()
    assert list(paper.columns) == ["algo", "T_d", "N", "train_ms", "train_ci", "infer_ms", "infer_ci"]
    rows = {r["algo"]: (r["T_d"], r["N"], r["train_ms"], r["train_ci"], r["infer_ms"], r["infer_ci"]) for r in paper.to_dict("records")}
    assert rows == {
        "SOM": (1, 32, 6.512, 0.026, 0.218, 0.002),
        "QSM": (20, 32, 7.238, 0.032, 0.606, 0.003),
        "DPMD": (20, 32, 8.941, 0.037, 1.036, 0.004),
        "DIPO": (100, 1, 10.097, 0.042, 1.562, 0.029),
        "SDAC": (20, 32, 15.633, 0.057, 1.012, 0.014),
        "DACER": (20, 1, 15.791, 0.161, 0.703, 0.010),
        "QVPO": (20, 32, 40.768, 0.136, 1.044, 0.027),
    }


def fake_report(times: dict[str, tuple[float, float]]) -> lat.LatencyReport:
    """A report with given (train ms, infer ms) means, as if measured."""
    rows = [lat.AlgoLatency(name, 1, 32, 256, 1, lat.Timing(tr, 0.1, tr, 30), lat.Timing(inf, 0.01, inf, 30))
            for name, (tr, inf) in times.items()]
    meta = {**lat.machine_info(torch.device("cpu")), "repeats": 30, "warmup": 5, "timestamp": "2025-01-01T00:00:00+00:00"}
    return lat.LatencyReport("HalfCheetah-v4", rows, dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc), meta)


def test_ratios_and_ordering_against_som():
    report = fake_report({"som": (10.0, 0.5), "qsm": (15.0, 0.4), "dacer": (30.0, 2.0)})
    comp = lat.compare(report)
    assert comp.train_ratio == pytest.approx({"som": 1.0, "qsm": 1.5, "dacer": 3.0})
    assert comp.infer_ratio == pytest.approx({"som": 1.0, "qsm": 0.8, "dacer": 4.0})
    paper = comp.paper.set_index("algo")
    assert paper.loc["QVPO", "train_ratio"] == pytest.approx(40.768 / 6.512)
    assert paper.loc["DIPO", "infer_ratio"] == pytest.approx(1.562 / 0.218)
    assert paper.loc["QSM", "ours"] == "qsm" and pd.isna(paper.loc["QVPO", "ours"])
    # paper: som < qsm < dacer in training (same); inference som < qsm < dacer, ours qsm < som < dacer (differs)
    assert "Training time, fastest first: ours som < qsm < dacer; paper som < qsm < dacer (same order)." in comp.notes
    assert "Inference time, fastest first: ours qsm < som < dacer; paper som < qsm < dacer (order differs)." in comp.notes
    md = render_lat.to_markdown(report, comp)
    assert "| qsm | 1 | 32 | <u>15.000 ± 0.100</u> | 15.000 | **0.400 ± 0.010** | 0.400 | 1.50× | 0.80× |" in md
    assert "| QVPO | 20 | 32 | 40.768 ± 0.136 | 1.044 ± 0.027 | 6.26× | 4.79× |" in md


def test_ratio_columns_na_without_som():
    comp = lat.compare(fake_report({"sac": (10.0, 0.5)}))
    assert comp.train_ratio is None and comp.infer_ratio is None
    assert any("n/a" in n and "som was not measured" in n for n in comp.notes)
    csv = pd.read_csv(pd.io.common.StringIO(render_lat.to_csv(fake_report({"sac": (10.0, 0.5)}), comp)))
    assert set(csv["source"]) == {"sombench", "paper"} and len(csv) == 8
    assert csv.loc[csv["algo"] == "sac", "train_vs_som"].isna().all()


def test_the_reference_is_a_parameter_whose_default_is_the_papers_som():
    """Ratios divide by `reference` (default: SOM, declared once); another one renames the columns, and one
    the paper's Table 2 lacks leaves the paper's ratio columns n/a, with a note."""
    report = fake_report({"som": (10.0, 0.5), "qsm": (15.0, 0.4), "sac": (5.0, 0.25)})
    default = lat.compare(report)
    assert lat.DEFAULT_REFERENCE == "som" and default.reference == "som" and default.reference_label == "SOM"
    assert "Train × SOM" in render_lat.to_markdown(report, default)
    comp = lat.compare(report, reference="qsm")
    assert comp.train_ratio == pytest.approx({"som": 10 / 15, "qsm": 1.0, "sac": 5 / 15})
    paper = comp.paper.set_index("algo")
    assert paper.loc["QSM", "train_ratio"] == 1.0 and paper.loc["SOM", "infer_ratio"] == pytest.approx(0.218 / 0.606)
    md = render_lat.to_markdown(report, comp)
    assert "Train × QSM" in md and "Infer × QSM" in md and "× SOM" not in md
    assert "× QSM: each algorithm's mean time / QSM's mean time" in " ".join(comp.notes)
    csv = pd.read_csv(pd.io.common.StringIO(render_lat.to_csv(report, comp)))
    assert "train_vs_qsm" in csv.columns and "train_vs_som" not in csv.columns
    assert json.loads(render_lat.to_json(report, comp))["rows"][0]["train_vs_qsm"] == pytest.approx(10 / 15)
    outside = lat.compare(report, reference="sac")
    assert outside.paper["train_ratio"].isna().all() and outside.train_ratio["sac"] == 1.0
    assert "The paper's × sac columns are n/a: its Table 2 has no sac." in outside.notes
    assert "| SOM | 1 | 32 | **6.512 ± 0.026** | **0.218 ± 0.002** | n/a | n/a |" in render_lat.to_markdown(report, outside)


# -- the command --------------------------------------------------------------------------------
def test_latency_every_registered_algorithm_writes_its_csv(cli, tmp_path, monkeypatch):
    """Every registered algorithm's real `update` and `act` run through the command. To keep this
    test fast on 2 CPU cores as algorithms are added, their networks shrink to 2 x 32 and the warm-up
    to 1 repeat; batch size, particles and everything else stay the paper's (the timer itself is
    tested above)."""
    registry = algorithms.load_all()
    for cls in registry.values():
        if "hidden_sizes" in {f.name for f in dataclasses.fields(cls.Config)}:
            monkeypatch.setattr(cls, "Config", functools.partial(cls.Config, hidden_sizes=(32, 32)))
    monkeypatch.setattr(lat, "WARMUP", 1)
    results = tmp_path / "results"
    code, out, err = cli(["latency", "--repeats", "3", "--device", "cpu", "--threads", "1", "--format", "md", "--results", str(results)])
    assert code == 0, err
    [path] = stored_csvs(results)
    assert path.name.startswith("HalfCheetah-v4_cpu_") and path.name.endswith("Z.csv")
    assert (results / ".sombench-store").exists()
    frame = pd.read_csv(path)
    assert list(frame.columns) == lat.CSV_COLUMNS
    assert sorted(frame["algo"]) == sorted(registry) and len(frame) == len(registry)
    for row in frame.to_dict("records"):
        cls = registry[row["algo"]]
        assert row["train_ms_mean"] > 0 and row["infer_ms_mean"] > 0 and row["train_ms_median"] > 0
        assert row["train_ms_ci95"] >= 0 and row["repeats"] == 3 and row["warmup"] == 1 and row["torch_threads"] == 1
        assert row["update_cycle"] == cls.update_cycle and row["batch_size"] == cls.Config().batch_size
        assert (math.isnan(row["T_d"]) if cls.generation_steps is None else row["T_d"] == cls.generation_steps)
        assert row["device"] == "cpu" and row["compiled"] == False  # noqa: E712 (a CSV bool)
        assert f"| {row['algo']} |" in out
    assert "Device cpu" in out and "compiled: no" in out and "1 thread(s)" in out
    for name, cls in registry.items():
        if cls.update_cycle > 1:
            assert f"{name} {cls.update_cycle} consecutive updates" in out


def test_latency_json(cli, tmp_path):
    code, out, err = cli(["latency", "--algos", "sac", "--repeats", "3", "--device", "cpu", "--threads", "1", "--format", "json",
                          "--results", str(tmp_path)])
    assert code == 0, err
    payload = json.loads(out)
    for key in ("env", "device", "gpu", "cpu", "torch_threads", "torch_version", "compiled", "repeats", "warmup", "timestamp", "csv", "rows"):
        assert key in payload, key
    assert payload["env"] == "HalfCheetah-v4" and payload["device"] == "cpu" and payload["compiled"] is False
    assert payload["torch_version"] == torch.__version__ and payload["repeats"] == 3 and payload["gpu"] is None
    [row] = payload["rows"]
    assert row["algo"] == "sac" and row["T_d"] is None and row["N"] == 1 and row["batch_size"] == 256
    assert row["train_ms_mean"] > 0 and row["train_ms_ci95"] is not None and row["infer_ms_median"] > 0
    assert "paper" not in payload
    assert stored_csvs(tmp_path) == [tmp_path / "latency" / payload["csv"].rsplit("/", 1)[1]]


def test_latency_paper(cli, tmp_path):
    code, out, err = cli(["latency", "--algos", "sac", "--repeats", "3", "--device", "cpu", "--threads", "1", "--paper", "--results", str(tmp_path)])
    assert code == 0, err
    assert "SOM paper, Table 2" in out and "QVPO" in out  # rich: cells may wrap in a narrow terminal
    code, out, err = cli(["latency", "--algos", "sac", "--repeats", "3", "--device", "cpu", "--threads", "1", "--paper", "--format", "md",
                          "--results", str(tmp_path)])
    assert code == 0, err
    assert "SOM paper, Table 2" in out and "Train × SOM" in out and "Infer × SOM" in out
    for name, cell in [("SOM", "6.512 ± 0.026"), ("QSM", "7.238 ± 0.032"), ("DPMD", "8.941 ± 0.037"), ("DIPO", "10.097 ± 0.042"),
                       ("SDAC", "15.633 ± 0.057"), ("DACER", "15.791 ± 0.161"), ("QVPO", "40.768 ± 0.136")]:
        assert name in out and cell in out
    assert "| QVPO | 20 | 32 | 40.768 ± 0.136 | 1.044 ± 0.027 | 6.26× | 4.79× |" in out  # ratios: / SOM
    assert "| n/a | n/a |" in out and "som was not measured" in out
    assert len(stored_csvs(tmp_path)) == 2  # one per measurement, even within the same second
    code, out, err = cli(["latency", "--algos", "sac", "--repeats", "3", "--device", "cpu", "--threads", "1", "--paper", "--format", "json",
                          "--results", str(tmp_path)])
    assert code == 0, err
    payload = json.loads(out)
    assert payload["rows"][0]["train_vs_som"] is None
    paper = {r["algo"]: r for r in payload["paper"]["rows"]}
    assert len(paper) == 7 and paper["SOM"]["train_ratio"] == 1.0
    assert paper["DACER"]["infer_ratio"] == pytest.approx(0.703 / 0.218)


def test_latency_help_has_example(cli):
    code, out, _ = cli(["latency", "--help"])
    assert code == 0 and "Example: sombench latency" in out


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--algos", "sac,nope"], "unknown algorithm 'nope'; choose one of: "),  # the registry grows
        (["--env", "NoSuchEnv-v0"], "unknown environment 'NoSuchEnv-v0'"),
        (["--env", "CartPole-v1"], "Discrete action space"),
        (["--repeats", "0"], "--repeats must be a positive integer"),
        (["--repeats", "-3"], "--repeats must be a positive integer"),
        (["--threads", "0"], "--threads must be a positive integer"),
        (["--format", "xml"], "'xml' is not one of"),
        (["--device", "tpu"], "unknown device"),
        (["--repeats", "many"], "Invalid value for '--repeats'"),
        (["--breakdown", "--format", "csv"], "--breakdown prints tables"),
    ],
)
def test_latency_bad_input_one_line_exit_2_nothing_written(cli, tmp_path, args, needle):
    results = tmp_path / "results"
    assert_one_line_error(*cli(["latency", "--results", str(results), *args]), needle)
    assert tree(tmp_path) == []


def test_latency_refuses_a_foreign_folder_before_measuring(cli, tmp_path, monkeypatch):
    (tmp_path / "notes.txt").write_text("mine")
    monkeypatch.setattr(lat, "measure_all", lambda *a, **k: pytest.fail("measured before checking the store"))
    code, _, err = cli(["latency", "--algos", "sac", "--repeats", "3", "--results", str(tmp_path)])
    assert code == 2 and "is not a sombench results store" in err
    assert tree(tmp_path) == ["notes.txt"]


def test_matmul_shapes_by_hand():
    """A 3 -> 4 -> 2 MLP at batch 5: two forward products; backward input gradients of the second layer only
    (the first layer's input needs none unless asked), weight gradients of both."""
    from torch import nn

    from algorithms.common.nets import EnsembleMLP, linear_layers, matmul_shapes, mlp

    layers = linear_layers(mlp(3, 2, (4,)))
    assert layers == [(1, 3, 4), (1, 4, 2)]
    assert matmul_shapes(layers, 5) == [(1, 5, 3, 4), (1, 5, 4, 2)]
    assert matmul_shapes(layers, 5, input_grads=True, weight_grads=True) == [
        (1, 5, 3, 4), (1, 5, 4, 2), (1, 3, 5, 4), (1, 5, 2, 4), (1, 4, 5, 2)]
    assert matmul_shapes(layers, 5, forwards=2, input_grads=True, action_grad=True) == [
        (1, 5, 3, 4), (1, 5, 3, 4), (1, 5, 4, 2), (1, 5, 4, 2), (1, 5, 4, 3), (1, 5, 2, 4)]
    twin = linear_layers(EnsembleMLP(2, 3, 1, (4, 4)))
    assert twin == [(2, 3, 4), (2, 4, 4), (2, 4, 1)] and not isinstance(twin[0], nn.Module)
