"""`sombench analyze`: the SOM paper's policy-analysis figures (Section 5, "Policy Analysis"; Appendices D
and E) from stored runs' checkpoints, for any two or more generative policies (`Generator`), one learned
critic (`QValued`) scoring them all.

Written into the output folder (default RESULTS/analysis/<env>/<label>-vs-<label>_seed<N>/, beside the
runs, never named seed_* so no reader of the store takes it for a run), each atomically:
    fig3_q_boxplot.png        Figure 3: per-state Q mean and std of each method's candidates, box plots
    tsne_q_landscape.png      Figures 4, 10-12: t-SNE of the samples on the Q-landscape heat map
    policy_analysis.json      the settings, the runs and checkpoints used, the critic, and the numbers drawn
Nothing is written before every run is found and every check has passed.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from sombench.analysis.policy_analysis import BOX_CANDIDATES, BOX_STATES, ROLLOUT_STEPS, TSNE_SAMPLES, TSNE_STEPS
from sombench.app import common
from sombench.errors import InvalidValue, UserError

MAX_METHODS = 6
"""As many methods as the figures have distinct markers (render.policy_analysis.MARKERS)."""


@dataclasses.dataclass
class AnalyzeRequest:
    """What `sombench analyze` is asked (see `sombench analyze --help`)."""

    algos: list[str]
    """Two or more algorithms (`som`) or exact variants (`som@w10`), comma-separated or repeated; the first
    is the behaviour policy of both rollouts (SOM in the paper)."""
    env: str
    results: Path = Path("results")
    seed: int = 0
    """The runs' seed (seed_<seed> of each method); every random stream of the analysis derives from it."""
    out: Path | None = None
    """Output folder; None: RESULTS/analysis/<env>/<labels joined by -vs->_seed<seed>/."""
    critic: str | None = None
    """The run whose critic scores every method's actions; None: the first algorithm's (see `default_critic`)."""
    device: str = "auto"
    candidates: int = BOX_CANDIDATES
    """Candidates per state and method in Figure 3 (Appendix D: 32)."""
    threads: int | None = None
    """torch.set_num_threads and t-SNE's n_jobs; None: torch's and scikit-learn's defaults."""


@dataclasses.dataclass
class MethodSummary:
    label: str
    run: Path
    step: int
    """The checkpoint's env step."""
    state: str
    median_mean: float
    """Median over the states of the per-state mean Q of the method's candidates (critic units)."""
    median_std: float
    """Median over the states of the per-state Q std."""
    spread: float
    """Mean distance of the method's t-SNE points from their step's centroid (analysis.spread), t-SNE units."""


@dataclasses.dataclass
class AnalyzeResult:
    env: str
    seed: int
    critic: str
    """The label of the run whose critic scored every method."""
    critic_run: Path
    critic_step: int
    out: Path
    files: list[Path]
    methods: list[MethodSummary]
    box: Any
    """train.policy_analysis.BoxData: the pool, the sampled states, each method's candidates and their Q."""
    tsne: Any
    """train.policy_analysis.TsneData: the rollout's states, each method's samples and their Q."""
    embedding: dict[str, Any]
    """label -> [T, M, 2] the samples on the t-SNE plane."""


def default_critic(labels: list[str]) -> str:
    """The critic that scores every method when none is asked for: the first method's (SOM's in the paper's
    comparison). Appendix D says only "a learned Q-function". The first method is the behaviour policy, so
    its critic was trained on the states the analysis samples; MFP's own critic would score SOM's actions
    off its data, and scoring each method by its own critic would put the two on different value scales.
    The first method's generator is also trained toward its own critic's high values, which favours it:
    `--critic` scores with another run's critic (any QValued algorithm at the same env and seed) to check."""
    return labels[0]


def _check_classes(labels: list[str], critic: str) -> None:
    from algorithms.common.capabilities import Generator, QValued

    registry_generators = [n for n in common.algorithm_names() if issubclass(common.algorithm_class(n), Generator)]
    for label in labels:
        name = label.partition("@")[0]
        if not issubclass(common.algorithm_class(name), Generator):
            raise UserError(f"{name} is not a generative policy (no Generator.generate to draw actions from); "
                            f"`sombench analyze` compares generators: {', '.join(registry_generators)}")
    name = critic.partition("@")[0]
    if not issubclass(common.algorithm_class(name), QValued):
        valued = [n for n in common.algorithm_names() if issubclass(common.algorithm_class(n), QValued)]
        raise InvalidValue("critic", f"{name} has no action-value critic (QValued.q_value); choose one of: {', '.join(valued)}")


def find_run(root: Path, env: str, label: str, seed: int):
    """The store's run (a runs.store.RunRecord) of `label` (an algorithm: its only variant, or the default
    one if it has several; `algo@variant`: exactly that) on `env` at `seed`; UserError naming the missing
    run and the command that makes it, or listing the variants to choose from."""
    from sombench.runs.store import Store

    records = [r for r in Store(root).runs(envs=[env], algos=[label]) if r.key.seed == seed]
    exact = [r for r in records if r.key.label == label]
    records = exact or records
    algo, _, variant = label.partition("@")
    if not records:
        how = f"sombench run --algo {algo} --env {env} --seed-start {seed} --results {root}"
        extra = f" (with the --tag or --set values of variant {variant})" if variant else ""
        raise UserError(f"no {label} run of {env} with seed {seed} in {root}; make one with `{how}`{extra}")
    if len(records) > 1:
        names = ", ".join(r.key.label for r in records)
        raise UserError(f"{label} names {len(records)} runs of {env} seed {seed} in {root} ({names}); "
                        f"give one exactly, e.g. --algos {records[0].key.label}")
    return records[0]


def default_out(results: Path, env: str, labels: list[str], seed: int) -> Path:
    """RESULTS/analysis/<env>/<label>-vs-<label>..._seed<N>/ (see the module docstring)."""
    from sombench.runs.store import Store

    return Store(Path(results)).analysis_dir(env, labels, seed)


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise InvalidValue("out", f"{out} is a file; give a folder for the figures")
    existing = out
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise InvalidValue("out", f"{out} cannot be created: {existing} is not a folder")
    import os

    if not os.access(existing, os.W_OK):
        raise InvalidValue("out", f"{out}: {existing} is not writable; choose another folder")


@dataclasses.dataclass
class _Checked:
    labels: list[str]
    critic: str
    records: dict[str, Any]
    out: Path


def check(req: AnalyzeRequest) -> _Checked:
    """Validate `req` and find every run (UserError, nothing written); the resolved labels, critic, runs and out."""
    from sombench.envs import describe_env
    from sombench.runs.store import Store

    names = common.split_names(req.algos) or []
    if len(names) < 2:
        raise InvalidValue("algos", f"needs two or more algorithms to compare (e.g. som,mfp), got {len(names)}")
    if len(names) > MAX_METHODS:
        raise InvalidValue("algos", f"takes at most {MAX_METHODS} algorithms, got {len(names)}")
    if len(set(names)) < len(names):
        raise InvalidValue("algos", f"names an algorithm twice: {','.join(names)}")
    common.check_non_negative("seed", req.seed)
    common.check_positive("candidates", req.candidates)
    common.check_positive("threads", req.threads)
    critic = req.critic or default_critic(names)
    _check_classes(names, critic)
    describe_env(req.env)
    Store(req.results).check_readable()
    records = {label: find_run(req.results, req.env, label, req.seed) for label in dict.fromkeys([*names, critic])}
    labels = [records[n].key.label for n in names]
    if len(set(labels)) < len(labels):
        raise InvalidValue("algos", f"names one run twice ({', '.join(labels)}); give exact variants")
    out = req.out or default_out(req.results, req.env, labels, req.seed)
    _check_out(out)
    return _Checked(labels, records[critic].key.label, {records[n].key.label: records[n] for n in records}, out)


def analyze(req: AnalyzeRequest) -> AnalyzeResult:
    """Make Figure 3 and the t-SNE figure for `req` and write them (see the module docstring). UserError
    (nothing written) for a non-generator algorithm, a critic without Q, or a missing run or checkpoint."""
    checked = check(req)
    import torch

    from sombench.analysis import policy_analysis as numbers
    from sombench.render import policy_analysis as draw
    from sombench.runs.store import atomic_write_bytes
    from sombench.train import policy_analysis as sampling

    device = torch.device(common.resolve_device(req.device))
    if req.threads:
        torch.set_num_threads(req.threads)
    loaded = {label: sampling.load_policy(label, checked.records[label].path, device) for label in checked.records}
    policies = [loaded[label] for label in checked.labels]
    critic = loaded[checked.critic]

    box = sampling.box_data(policies, critic, req.env, req.seed, ROLLOUT_STEPS, BOX_STATES, req.candidates)
    summaries = [numbers.box_summary(p.label, box.q[p.label]) for p in policies]
    tsne = sampling.tsne_data(policies, critic, req.env, req.seed, TSNE_STEPS, TSNE_SAMPLES)
    embedding, panels = numbers.tsne_panels(tsne.samples, tsne.q, req.seed, n_jobs=req.threads)

    critic_text = f"critic: {critic.label} (step {critic.step:,})"
    first = checked.labels[0]
    box_png = draw.box_plot(
        summaries, f"{req.env}: Q of {req.candidates} candidates per state at {BOX_STATES} states\n{critic_text}",
        f"SOM paper Fig. 3 / App. D. States: {BOX_STATES} drawn uniformly without replacement from an {ROLLOUT_STEPS}-step rollout of "
        f"{first} (behaviour policy, exploring; reset at episode ends). Candidates: each generator alone (one pass from seeded noise, "
        f"no best-of-N, no exploration noise). Q: {critic.label}'s q_value (twin critics: min(Q1, Q2)). Seed {req.seed}. Each dot is one state.")
    tsne_png = draw.tsne_plot(
        panels, checked.labels,
        f"{req.env}: {TSNE_SAMPLES} samples per method and step along a {TSNE_STEPS}-step rollout of {first}; {critic_text}",
        "SOM paper Figs. 4, 10-12 / App. E. One t-SNE of all samples jointly; heat map: Gaussian-kernel (Nadaraya-Watson) "
        "smoothing of the samples' Q over the plane (Scott's bandwidth), 8 contour lines; "
        f"Q: {critic.label}'s q_value (twin critics: min(Q1, Q2)) of each sample at its own step's state. "
        f"{checked.labels[0]}: white circles, {checked.labels[1]}: gray triangles. Seed {req.seed}.")

    methods = [MethodSummary(p.label, p.run, p.step, p.state, s.median_mean, s.median_std,
                             numbers.spread(embedding[p.label])) for p, s in zip(policies, summaries)]
    out = checked.out
    from sombench.runs.store import RunFiles

    named = RunFiles(out)
    files = [named.analysis_box, named.analysis_tsne, named.analysis_data]
    payload = _payload(req, checked, critic, methods, summaries, box, files)
    try:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(files[0], box_png)
        atomic_write_bytes(files[1], tsne_png)
        atomic_write_bytes(files[2], (json.dumps(payload, indent=2) + "\n").encode())
    except OSError as exc:
        raise UserError(f"cannot write into {out}: {exc.strerror or exc}") from None
    return AnalyzeResult(req.env, req.seed, critic.label, critic.run, critic.step, out, files, methods, box, tsne, embedding)


def _payload(req: AnalyzeRequest, checked: _Checked, critic, methods: list[MethodSummary], summaries, box, files: list[Path]) -> dict:
    from sombench.train.policy_analysis import BEHAVIOUR_DETERMINISTIC

    return {
        "env": req.env, "seed": req.seed,
        "critic": {"label": critic.label, "run": str(critic.run), "step": critic.step, "value": "QValued.q_value (twin critics: min(Q1, Q2))"},
        "settings": {"rollout_steps": ROLLOUT_STEPS, "states": BOX_STATES, "candidates": req.candidates, "tsne_steps": TSNE_STEPS,
                     "tsne_samples": TSNE_SAMPLES, "behaviour": checked.labels[0],
                     "behaviour_deterministic": BEHAVIOUR_DETERMINISTIC, "state_sample": "uniform without replacement",
                     "q_std_ddof": 0, "source": "SOM paper, Appendix D (Figure 3) and Appendix E (Figures 4, 10-12)"},
        "methods": [{**{k: v for k, v in dataclasses.asdict(m).items() if k != "run"}, "run": str(m.run),
                     "per_state_q_mean": s.mean.tolist(), "per_state_q_std": s.std.tolist()} for m, s in zip(methods, summaries)],
        "state_indices": box.indices.tolist(),
        "files": [str(f) for f in files],
    }
