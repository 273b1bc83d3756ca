"""`sombench analyze` (SOM paper, Appendices D and E): from two tiny stored runs it writes Figure 3 and the
t-SNE figure, its numbers agree with a computation by hand from the same checkpoints, it is reproducible
from the seed, and bad input (a non-generator, a critic without Q, a missing run) is one line, exit 2,
nothing written."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import assert_one_line_error, invoke, tree
from sombench.analysis import policy_analysis as numbers
from sombench.app import analyze as use_case
from sombench.runs import store

ENV = "Pendulum-v1"
TINY = ("hidden_sizes=32,32", "batch_size=32", "warmup_steps=100")


def tiny_args(root: Path, algo: str) -> list[str]:
    args = ["run", "--algo", algo, "--env", ENV, "--steps", "300", "--results", str(root), "--eval-every", "300",
            "--eval-episodes", "1", "--checkpoint-every", "300", "--log-every", "100", "--threads", "1", "--device", "cpu"]
    for pair in TINY + (("num_score_samples=8",) if algo == "som" else ()):
        args += ["--set", pair]
    return args


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    """Tiny SOM and MFP runs, analysed once through the CLI; (results root, the use case's result, stdout)."""
    root = tmp_path_factory.mktemp("analyze") / "results"
    for algo in ("som", "mfp"):
        assert invoke(tiny_args(root, algo)) == 0
    captured = []

    def keep(req):
        captured.append(real(req))
        return captured[-1]

    real = use_case.analyze
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out):
        mp.setattr(use_case, "analyze", keep)
        code = invoke(["analyze", "--algos", "som,mfp", "--env", ENV, "--results", str(root), "--threads", "1", "--device", "cpu"])
    assert code == 0, out.getvalue()
    return root, captured[0], out.getvalue()


def load(run: Path):
    from sombench.train.replay import build_policy, stored_run

    record, path = stored_run(run)
    return build_policy(record, path, torch.device("cpu"))[0]


def test_the_figures_and_numbers_are_written_and_summarised(analysed):
    root, result, out = analysed
    folder = root / "analysis" / ENV / f"{result.methods[0].label}-vs-{result.methods[1].label}_seed0"
    assert result.out == folder
    for name in ("fig3_q_boxplot.png", "tsne_q_landscape.png"):
        data = (folder / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    payload = json.loads((folder / "policy_analysis.json").read_text())
    assert payload["critic"]["label"] == result.critic == result.methods[0].label and result.critic.startswith("som@")
    text = " ".join(out.split())
    assert f"critic: {result.critic}" in text and "fig3_q_boxplot.png" in text and "tsne_q_landscape.png" in text
    for m in result.methods:
        assert f"{m.median_mean:.4g}" in text and f"{m.median_std:.4g}" in text
    # the analysis folder is no run: the store's readers see the two runs only
    assert [p.parent.name.split("@")[0] for p in store.iter_run_dirs(root)] == ["mfp", "som"]


def test_per_state_q_statistics_match_a_computation_by_hand(analysed):
    """Appendix D: 50 distinct states of an 800-step pool, 32 candidates each from the generator alone
    (seeded noise, no best-of-N), scored by SOM's critic (min of its twin heads); mean and std per state."""
    root, result, _ = analysed
    box = result.box
    assert box.pool.shape == (800, 3) and box.states.shape == (50, 3) and len(set(box.indices.tolist())) == 50
    np.testing.assert_array_equal(box.states, box.pool[box.indices])
    payload = json.loads((result.out / "policy_analysis.json").read_text())
    critic = load(result.critic_run)
    for i, method in enumerate(result.methods):
        gen = load(method.run)
        actions = box.candidates[method.label]
        assert actions.shape == (50, 32, 1)
        g = torch.Generator().manual_seed(numbers.stream_seed(0, numbers.STREAM_BOX_CANDIDATES, i))
        noise = gen.noise_std * torch.randn((50 * 32, 1), generator=g)
        for s in (0, 17, 49):
            obs = torch.as_tensor(box.states[s]).repeat(32, 1)
            with torch.no_grad():
                by_hand = gen.actor.one_step(noise[s * 32:(s + 1) * 32], obs)
                heads, _ = critic.critic(obs, torch.as_tensor(actions[s]))  # SOM's distributional twin: means [2, 32], stds
                q = heads.min(dim=0).values
            np.testing.assert_allclose(actions[s], by_hand.numpy(), atol=1e-6)
            q = q.double().numpy()
            np.testing.assert_allclose(payload["methods"][i]["per_state_q_mean"][s], q.mean(), rtol=1e-5)
            np.testing.assert_allclose(payload["methods"][i]["per_state_q_std"][s], q.std(), rtol=1e-4)
        assert method.median_mean == pytest.approx(np.median(payload["methods"][i]["per_state_q_mean"]))


def test_rollouts_and_samples_repeat_with_the_seed(analysed):
    """Appendix E: a 5-step rollout from a seeded initial state, 100 samples per method and step: 500 + 500
    points on one t-SNE plane; the same seed gives the same states and samples, another seed other ones."""
    from sombench.train import policy_analysis as sampling

    root, result, _ = analysed
    tsne = result.tsne
    assert [tsne.samples[m.label].shape for m in result.methods] == [(5, 100, 1)] * 2
    assert [result.embedding[m.label].shape for m in result.methods] == [(5, 100, 2)] * 2
    policies = [sampling.load_policy(m.label, m.run, torch.device("cpu")) for m in result.methods]
    again = sampling.tsne_data(policies, policies[0], ENV, 0)
    np.testing.assert_array_equal(again.states, tsne.states)
    for m in result.methods:
        np.testing.assert_array_equal(again.samples[m.label], tsne.samples[m.label])
        np.testing.assert_allclose(again.q[m.label], tsne.q[m.label])
    np.testing.assert_array_equal(sampling.behaviour_states(policies[0], ENV, 800, 0), result.box.pool)
    other = sampling.tsne_data(policies, policies[0], ENV, 1, steps=2, n_samples=4)
    assert not np.allclose(other.states[0], tsne.states[0])


def test_the_q_landscape_is_kernel_smoothed_q():
    """Appendix E.2's heat map: at any grid point, the Gaussian-kernel-weighted mean of the samples' Q
    (scipy's multivariate normal density as the weights), with Scott's bandwidth."""
    from scipy.stats import gaussian_kde, multivariate_normal

    rng = np.random.default_rng(3)
    pts = rng.normal(size=(300, 2)) * [4.0, 1.0]
    q = pts[:, 0] - pts[:, 1] ** 2
    land = numbers.q_landscape(pts, q, grid=40)
    np.testing.assert_allclose(land.bandwidth, gaussian_kde(pts.T).covariance)
    for i, j in ((0, 0), (20, 13), (39, 27)):
        w = multivariate_normal(mean=[land.x[j], land.y[i]], cov=land.bandwidth).pdf(pts)
        assert land.q[i, j] == pytest.approx(w @ q / w.sum(), rel=1e-9)
    assert len(land.levels()) == 8 and land.q.min() < land.levels()[0] and land.levels()[-1] < land.q.max()


def test_a_non_generator_is_one_line_and_writes_nothing(cli, analysed):
    root, _, _ = analysed
    before = tree(root)
    code, out, err = cli(["analyze", "--algos", "ppo,som", "--env", ENV, "--results", str(root)])
    assert_one_line_error(code, out, err, "ppo is not a generative policy")
    assert tree(root) == before


def test_a_missing_run_is_one_line_naming_it_and_writes_nothing(cli, analysed):
    root, _, _ = analysed
    before = tree(root)
    code, out, err = cli(["analyze", "--algos", "som,sac", "--env", ENV, "--results", str(root), "--out", str(root / "x")])
    assert_one_line_error(code, out, err, f"no sac run of {ENV} with seed 0 in {root}; make one with `sombench run --algo sac")
    code, out, err = cli(["analyze", "--algos", "som,mfp", "--env", ENV, "--results", str(root), "--seed", "3"])
    assert_one_line_error(code, out, err, f"no som run of {ENV} with seed 3")
    assert tree(root) == before


@pytest.mark.parametrize("args, needle", [
    (["--algos", "som"], "--algos needs two or more algorithms"),
    (["--algos", "som,mfp", "--critic", "ppo"], "--critic ppo has no action-value critic"),
    (["--algos", "som,nope"], "unknown algorithm 'nope'"),
])
def test_bad_analyze_input_is_one_line(cli, analysed, args, needle):
    root, _, _ = analysed
    code, out, err = cli(["analyze", "--env", ENV, "--results", str(root), *args])
    assert_one_line_error(code, out, err, needle)
