"""Table 1, statistics and Figure 2 from a hand-made store."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sombench.analysis import aggregate
from sombench.render import plots, tables
from sombench.runs import store
from sombench.analysis.rliable import iqm, optimality_gap, probability_of_improvement, rliable_stats


def make_run(root, env, algo, seed, returns, state="done", total=None, every=100, budget_factor=None, variant=None):
    """A run folder as the trainer leaves it: eval.csv and state.json, and with `budget_factor` a config.json
    recording it (as the trainer does since records carry it; without, the record is an older one)."""
    run = store.run_dir(root, env, algo, seed, variant)
    run.mkdir(parents=True, exist_ok=True)
    steps = [every * (i + 1) for i in range(len(returns))]
    total = total or (steps[-1] if steps else every)
    if budget_factor is not None:
        store.atomic_write_json(run / "config.json", {"run": {"algo": algo, "env": env, "seed": seed, "total_steps": total},
                                                      "budget_factor": budget_factor})
    store.atomic_write_csv(run / "eval.csv", [{"env_step": s, "return_mean": r, "return_std": 0.0, "episodes": 1, "wall_s": 0.0}
                                              for s, r in zip(steps, returns)], store.EVAL_COLUMNS)
    store.write_state(run, state=state, env_step=steps[-1] if steps else 0, total_steps=total,
                      last_return=returns[-1] if returns else None)
    return run


@pytest.fixture
def small_store(tmp_path):
    store.init_store(tmp_path)
    # A: finals 10, 12, 14 on E1 and 1, 2, 3 on E2; B: 20, 22, 27 on E1, 0, 0.5, 1 on E2; C one weak seed on E1
    for seed, (e1, e2) in enumerate([(10, 1), (12, 2), (14, 3)]):
        make_run(tmp_path, "E1", "a", seed, [0, e1])
        make_run(tmp_path, "E2", "a", seed, [0, e2])
    for seed, (e1, e2) in enumerate([(20, 0.0), (22, 0.5), (27, 1.0)]):
        make_run(tmp_path, "E1", "b", seed, [5, e1])
        make_run(tmp_path, "E2", "b", seed, [0.1, e2])
    for seed, (e1, e2) in enumerate([(1, 0.2), (2, 0.3), (4, 0.4)]):
        make_run(tmp_path, "E1", "c", seed, [0, e1])
        make_run(tmp_path, "E2", "c", seed, [0, e2])
    return tmp_path


def test_cells_are_student_t_ci_by_hand(small_store):
    table = aggregate.build_table(aggregate.load_runs(small_store))
    cell = table.cells[("b", "E1")]
    x = np.array([20.0, 22.0, 27.0])
    half = stats.t.ppf(0.975, 2) * x.std(ddof=1) / math.sqrt(3)
    assert cell.mean == pytest.approx(23.0)
    assert cell.ci == pytest.approx(half)
    assert cell.ci == pytest.approx(4.302653 * math.sqrt(13) / math.sqrt(3), rel=1e-6)  # t(0.975, 2 dof), s^2 = 26/2


def test_normalized_on_paper_table_1():
    cells, _ = aggregate.paper_table()
    table = aggregate.table_from_frame(cells)  # computed, not the printed column
    assert round(table.normalized("SOM")[0], 3) == 0.997
    assert round(table.normalized("DACER")[0], 3) == 0.838


def test_best_bold_second_underlined(small_store):
    table = aggregate.build_table(aggregate.load_runs(small_store))
    md = tables.to_markdown(table, "t")
    # E1: b (23) best, a (12) second; E2: a (2) best, b (0.5) second
    row = {line.split("|")[1].strip(): line for line in md.splitlines() if line.startswith("| ") and "Algorithm" not in line}
    assert "**23.0 ± 9.0**" in row["b"] and "<u>12.0 ± 5.0</u>" in row["a"]
    assert "**2.0 ± 2.5**" in row["a"] and "<u>0.5 ± 1.2</u>" in row["b"]
    assert "**" not in row["c"] and "<u>" not in row["c"]
    latex = tables.to_latex(table, "t")
    assert r"\textbf{23.0 $\pm$ 9.0}" in latex and r"\underline{12.0 $\pm$ 5.0}" in latex
    rich_table = tables.to_rich(table, "t").renderables[0]
    styles = {(col.header, i): cell.style for col in rich_table.columns for i, cell in enumerate(col._cells)}
    assert styles[("E1", 1)] == "bold" and styles[("E1", 0)] == "underline" and styles[("E1", 2)] == ""
    # Normalized: a = (12-2.33)/(23-2.33)/2 + 1/2 ..., best is a
    norm_a = ((12 - 7 / 3) / (23 - 7 / 3) + 1.0) / 2
    assert table.normalized("a")[0] == pytest.approx(norm_a)
    assert styles[("Normalized", 0)] == "bold"


def test_unfinished_run_flagged_not_averaged(small_store):
    make_run(small_store, "E1", "a", 3, [0, 1000], state="running", total=200)
    make_run(small_store, "E1", "a", 4, [0, 1000, 1000], state="done", total=300)  # another budget
    table = aggregate.build_table(aggregate.load_runs(small_store))
    cell = table.cells[("a", "E1")]
    assert cell.values == [10, 12, 14] and cell.mean == 12
    assert any("seed 3" in e and "interrupted" in e for e in cell.excluded)
    assert any("seed 4 ran 300 steps, not 200" in e for e in cell.excluded)
    md = tables.to_markdown(table, "t")
    assert "12.0 ± 5.0†" in md and "† a on E1: left out" in md


def test_at_step_compares_at_a_common_step(small_store):
    make_run(small_store, "E1", "a", 3, [0, 1000], state="running", total=400)
    table = aggregate.build_table(aggregate.load_runs(small_store), at_step=100)
    assert table.cells[("a", "E1")].values == [0, 0, 0, 0]
    assert table.cells[("b", "E1")].mean == 5
    table = aggregate.build_table(aggregate.load_runs(small_store), at_step=300)
    assert table.cells[("a", "E1")].n == 0 and len(table.cells[("a", "E1")].excluded) == 4


def test_seed_counts_shown_when_they_differ(small_store):
    make_run(small_store, "E2", "c", 3, [0, 0.1])
    table = aggregate.build_table(aggregate.load_runs(small_store))
    assert "(n=4)" in tables.cell_text(table, "c", "E2") and "(n=3)" in tables.cell_text(table, "a", "E1")


def test_norm_ref_file(small_store, tmp_path):
    ref = tmp_path / "ref.csv"
    ref.write_text("env,min,max\nE1,0,40\nE2,,\n")
    table = aggregate.build_table(aggregate.load_runs(small_store), norm_ref=aggregate.read_norm_ref(str(ref)))
    assert table.norm_min["E1"] == 0 and table.norm_max["E1"] == 40
    assert table.norm_min["E2"] == pytest.approx(0.3) and table.norm_max["E2"] == 2  # fell back to the table


def test_rliable_metrics_by_hand():
    assert iqm(np.array([0.0, 1, 2, 3]), np.array([4.0, 5, 6, 100])) == pytest.approx(3.5)  # middle four: 2..5
    assert optimality_gap(np.array([0.5, 1.5])) == pytest.approx(0.25)
    assert probability_of_improvement([np.array([2.0, 3])], [np.array([1.0, 2])]) == pytest.approx((1 + 1 + 0.5 + 1) / 4)


def test_rliable_is_seeded_and_orders_algorithms(small_store):
    table = aggregate.build_table(aggregate.load_runs(small_store))
    a, b = rliable_stats(table, reps=300), rliable_stats(table, reps=300)
    assert a == b
    lo, hi = a["per_algo"]["a"]["iqm_ci"]
    assert lo <= a["per_algo"]["a"]["iqm"] <= hi
    p_ac = next(p for p in a["probability_of_improvement"] if p["x"] == "a" and p["y"] == "c")
    assert p_ac["p"] == 1.0


@pytest.mark.parametrize("fmt", tables.FORMATS)
def test_every_format_renders(cli, small_store, fmt):
    code, out, err = cli(["table", "--results", str(small_store), "--format", fmt])
    assert code == 0, err
    assert "23.0" in out
    if fmt == "json":
        payload = json.loads(out)
        assert payload == json.loads(tables.to_json(tables.records(aggregate.build_table(aggregate.load_runs(small_store)))))
        cell = next(c for c in payload["cells"] if c["algo"] == "b" and c["env"] == "E1")
        assert cell["values"] == [20, 22, 27] and cell["rank"] == 1
    if fmt == "csv":
        frame = pd.read_csv(pd.io.common.StringIO(out))
        assert set(frame["env"]) == {"E1", "E2", "Normalized"}


def test_stats_and_paper_flags(cli, tmp_path):
    store.init_store(tmp_path)
    for seed, r in enumerate([3000.0, 3500.0]):
        make_run(tmp_path, "Hopper-v4", "sac", seed, [r])
        make_run(tmp_path, "Hopper-v4", "som", seed, [r + 100])
    code, out, err = cli(["table", "--results", str(tmp_path), "--paper", "--format", "json", "--stats", "rliable"])
    assert code == 0, err
    payload = json.loads(out)
    paper = {(c["algo"], c["env"]): (c["mean"], c["ci95"]) for c in payload["paper"]["cells"]}
    assert paper == {("sac", "Hopper-v4"): (1722.6, 248.7), ("som", "Hopper-v4"): (3425.2, 353.6)}
    assert payload["paper"]["normalized"]["som"]["value"] == 0.887
    assert {p["x"] for p in payload["rliable"]["probability_of_improvement"]} == {"sac", "som"}
    code, out, _ = cli(["table", "--results", str(tmp_path), "--paper"])
    assert code == 0 and "SOM paper, Table 1" in out and "1722.6" in out


def test_paper_rows_come_with_variants_of_their_algorithms(cli, tmp_path):
    """`make demo` tables som@demo and sac@demo: the paper's som and sac rows go beside them, once each."""
    store.init_store(tmp_path)
    for seed in range(2):
        make_run(tmp_path, "Hopper-v4", "sac", seed, [300.0], variant="demo")
        make_run(tmp_path, "Hopper-v4", "som", seed, [100.0], variant="demo")
        make_run(tmp_path, "Hopper-v4", "som", seed, [120.0], variant="w10")
    code, out, err = cli(["table", "--results", str(tmp_path), "--paper", "--format", "json"])
    assert code == 0, err
    paper = sorted((c["algo"], c["env"], c["mean"]) for c in json.loads(out)["paper"]["cells"])
    assert paper == [("sac", "Hopper-v4", 1722.6), ("som", "Hopper-v4", 3425.2)]


def test_plot_axes_cover_the_data(small_store, tmp_path):
    runs = aggregate.load_runs(small_store)
    table = aggregate.build_table(runs)
    fig = plots.build_figure(table)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["E1", "E2", "Normalized (mean over envs)"]
    for ax, env in zip(axes, ["E1", "E2"]):
        lo, hi = ax.get_ylim()
        x_lo, x_hi = ax.get_xlim()
        lines = {line.get_label().split(" ")[0]: line for line in ax.get_lines()}
        assert set(lines) == {"a", "b", "c"}
        for algo, line in lines.items():
            y = np.asarray(line.get_ydata())
            assert lo <= y.min() and y.max() <= hi and x_lo <= 100 and x_hi >= 200
            assert line.get_color() == plots.colours(table.algos)[algo]
            assert y[-1] == pytest.approx(table.mean(algo, env))  # the line ends at the table's cell
        for band in ax.collections:  # CI bands stay inside the axes too
            verts = np.concatenate([p.vertices for p in band.get_paths()])
            assert lo <= verts[:, 1].min() and verts[:, 1].max() <= hi
    plots.plt.close(fig)
    out = tmp_path / "fig.png"
    plots.plot_curves(table, out)
    assert out.stat().st_size > 10_000


def test_table_bad_input(cli, tmp_path):
    code, _, err = cli(["table", "--results", str(tmp_path / "none")])
    assert code == 2 and "no results store" in err
    store.init_store(tmp_path)
    code, _, err = cli(["table", "--results", str(tmp_path)])
    assert code == 2 and "no runs" in err
    code, _, err = cli(["table", "--results", str(tmp_path), "--format", "docx"])
    assert code == 2 and "'docx' is not one of" in err
    code, _, err = cli(["plot", "--results", str(tmp_path), "--out", "x.gif"])
    assert code == 2 and ".png, .pdf or .svg" in err


def test_shipped_random_reference_covers_the_paper_tasks():
    from sombench.envs import PAPER_TASKS

    ref = aggregate.read_norm_ref("random")
    assert set(ref) == set(PAPER_TASKS)
    assert all(math.isfinite(v["min"]) and math.isnan(v["max"]) for v in ref.values())
    assert -100 < ref["Hopper-v4"]["min"] < 100  # a random Hopper falls over at once


def test_ppo_is_compared_at_its_own_longer_budget_without_a_flag(tmp_path):
    """The paper trains PPO 5x longer on Reacher-v4 (its class's budget_factor, which the trainer records in
    config.json): at 5 x 200 steps it is in the table unflagged beside SAC at 200, and a PPO run at 200 steps
    is the one flagged."""
    store.init_store(tmp_path)
    for seed in (0, 1):
        make_run(tmp_path, "Reacher-v4", "sac", seed, [-20, -10], budget_factor=1)                 # 200 steps
        make_run(tmp_path, "Reacher-v4", "ppo", seed, [-30] * 9 + [-8], every=100, budget_factor=5)  # 1,000 steps = 5 x 200
    make_run(tmp_path, "Reacher-v4", "ppo", 2, [-30, -9], budget_factor=5)                          # 200 steps: not PPO's budget
    table = aggregate.build_table(aggregate.load_runs(tmp_path))
    assert table.budgets["Reacher-v4"] == 200
    ppo, sac = table.cells[("ppo", "Reacher-v4")], table.cells[("sac", "Reacher-v4")]
    assert ppo.values == [-8, -8] and sac.values == [-10, -10] and not sac.excluded
    assert ppo.excluded == ["seed 2 ran 200 steps, not 1,000"]
    assert any("ppo on Reacher-v4 at 5x (1,000 steps)" in n for n in tables.footnotes(table))


def test_at_step_takes_the_last_evaluation_at_or_before_it(tmp_path):
    store.init_store(tmp_path)
    make_run(tmp_path, "E", "a", 0, [1, 2, 3, 4], every=100)  # evaluations at 100..400
    make_run(tmp_path, "E", "a", 1, [5, 6], every=100, state="running", total=400)  # reached 200 only
    table = aggregate.build_table(aggregate.load_runs(tmp_path), at_step=250)
    cell = table.cells[("a", "E")]
    assert cell.values == [2.0] and cell.excluded == ["seed 1 has not reached step 250"]


def test_latex_has_no_raw_unicode_plus_minus(small_store):
    text = tables.to_latex(aggregate.build_table(aggregate.load_runs(small_store)), "T")
    assert "±" not in text and r"$\pm$" in text


def test_budget_factor_is_the_records_and_older_records_infer_it_from_the_paper_budget(tmp_path):
    """A record's own budget_factor wins; a record without one (stored before records carried it) is at k x
    its env's paper budget when its total_steps is such a multiple (k >= 2), else at 1x. No algorithm class
    is consulted: a factor the algorithm has today is not the one an old run was made with."""
    store.init_store(tmp_path)
    budget = 1_000_000  # Reacher-v4's paper budget
    for seed in (0, 1):
        make_run(tmp_path, "Reacher-v4", "sac", seed, [-20, -10], total=budget)
        make_run(tmp_path, "Reacher-v4", "ppo", seed, [-30, -8], total=5 * budget)     # older record: 5x inferred
        make_run(tmp_path, "Reacher-v4", "sdac", seed, [-30, -7], total=3 * budget, budget_factor=3)  # recorded
    make_run(tmp_path, "Reacher-v4", "ppo", 2, [-30, -9], total=1234)                 # not a multiple: 1x, flagged
    runs = {(r.algo, r.seed): r for r in aggregate.load_runs(tmp_path)}
    assert runs[("sac", 0)].budget_factor == 1 and runs[("ppo", 0)].budget_factor == 5 and runs[("sdac", 0)].budget_factor == 3
    assert runs[("ppo", 2)].budget_factor == 1
    table = aggregate.build_table(list(runs.values()))
    assert table.budgets["Reacher-v4"] == budget
    assert table.cells[("ppo", "Reacher-v4")].values == [-8, -8] and table.cells[("sdac", "Reacher-v4")].values == [-7, -7]
    assert table.cells[("ppo", "Reacher-v4")].excluded == [f"seed 2 ran 1,234 steps, not {budget:,}"]  # judged at its own 1x
    assert aggregate.inferred_budget_factor("NotAPaperTask-v0", 10 * budget) == 1
    assert aggregate.inferred_budget_factor("Reacher-v4", budget) == 1 and aggregate.inferred_budget_factor("Reacher-v4", None) == 1


def test_colours_follow_the_sorted_names_present():
    """No algorithm is named by the harness: the same set of names gets the same colours in any order, each a
    different one, in tab10's order of the sorted names (tab20's beyond ten names)."""
    assert plots.colours(["som", "sac"]) == plots.colours(["sac", "som", "sac"]) == {"sac": "#1f77b4", "som": "#ff7f0e"}
    many = plots.colours([f"algo{i:02d}" for i in range(15)])
    assert len(set(many.values())) == 15


def test_band_is_the_tables_student_t_interval_per_step():
    """The figure's band and the table's cell are the same interval (sombench.analysis.stats)."""
    from sombench.analysis.stats import mean_ci

    values = np.array([[1.0, 10.0], [2.0, 14.0], [4.0, 11.0]])
    mean, lo, hi = plots.mean_band(values)
    for column in range(2):
        m, half = mean_ci(values[:, column])
        assert mean[column] == pytest.approx(m) and hi[column] - mean[column] == pytest.approx(half)
        assert mean[column] - lo[column] == pytest.approx(half)
    one = plots.mean_band(values[:1])
    assert np.array_equal(one[0], one[1]) and np.array_equal(one[0], one[2])  # one seed: no band


def test_fixed_references_are_the_random_score_and_the_papers_best_mean():
    ref = aggregate.fixed_norm_ref()
    paper = pd.read_csv(aggregate._data_path("paper_table1.csv"))
    random = pd.read_csv(aggregate._data_path("random_scores.csv")).set_index("env")
    assert ref["Hopper-v4"]["min"] == random.loc["Hopper-v4", "min"]
    assert ref["Hopper-v4"]["max"] == paper[paper["env"] == "Hopper-v4"]["mean"].max()


def _hopper_runs(algo: str, finals: list[float]) -> list:
    return [aggregate.Run("Hopper-v4", algo, s, "done", 1000, pd.DataFrame({"env_step": [1000], "return_mean": [v]}))
            for s, v in enumerate(finals)]


def test_rliable_by_default_keeps_an_algorithms_interval_when_another_is_added():
    """With the table's own min and max, adding a better algorithm rescales everyone; fixed references do not."""
    ref = aggregate.read_norm_ref(aggregate.FIXED_REF)
    two = _hopper_runs("a", [1000.0, 1500.0, 2000.0]) + _hopper_runs("b", [500.0, 700.0, 900.0])
    three = two + _hopper_runs("c", [3000.0, 3200.0, 3400.0])
    before = rliable_stats(aggregate.build_table(two, norm_ref=ref), reps=200)["per_algo"]["a"]
    after = rliable_stats(aggregate.build_table(three, norm_ref=ref), reps=200)["per_algo"]["a"]
    assert before["iqm"] == after["iqm"] and before["iqm_ci"] == after["iqm_ci"]
    own_before = rliable_stats(aggregate.build_table(two), reps=200)["per_algo"]["a"]["iqm"]
    own_after = rliable_stats(aggregate.build_table(three), reps=200)["per_algo"]["a"]["iqm"]
    assert own_before != own_after  # the property the default protects against


def test_table_stats_rliable_defaults_to_fixed_references(small_store):
    from sombench.app.results import TableRequest, table

    result = table(TableRequest(small_store, stats="rliable", fmt="json"))
    assert "fixed references (the random-policy score as min, the paper's best Table 1 mean as max)" in result.table.norm_note
    assert "The table's own min and/or max: E1, E2." in result.table.norm_note  # no fixed references for these envs
    plain = table(TableRequest(small_store, fmt="json"))
    assert "fixed references" not in plain.table.norm_note  # without rliable, the table's own min and max as before


def test_a_long_variant_label_is_wrapped_at_its_separators_in_the_legend():
    """A variant label wider than a panel (it overflowed the axes in docs/images/som-control-idp.png) breaks
    after its '@' and '+' separators; nothing is lost, and a short label is left as it is."""
    from sombench.render.plots import wrap_label

    label = "sac@batch_size=64+hidden_sizes=64x64+warmup_steps=1000 (n=3)"
    wrapped = wrap_label(label)
    assert wrapped.replace("\n", "") == label
    assert wrapped.split("\n") == ["sac@batch_size=64+", "hidden_sizes=64x64+", "warmup_steps=1000 (n=3)"]
    assert wrap_label("som (n=3)") == "som (n=3)"
