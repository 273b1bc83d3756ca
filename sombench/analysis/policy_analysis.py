"""The numbers behind `sombench analyze` that need no torch: seeds of the analysis' random streams, the
state sample, per-state statistics of candidate Q-values (SOM paper, Appendix D, Figure 3), and the
t-SNE embedding with its kernel-smoothed Q-landscape (Appendix E, Figures 4 and 10-12).

Everything here takes and returns numpy arrays; Q-values are in the critic's own units (a discounted
sum of the run's rewards times its `reward_scale`, 0.2 in the paper's Table 3), actions in the
algorithms' [-1, 1]^d units.
"""

from __future__ import annotations

import dataclasses

import numpy as np

# -- random streams -----------------------------------------------------------------------------------
STREAM_BOX_ROLLOUT = 0
"""Stream of the Appendix D rollout: its env resets and the behaviour policy's noise."""
STREAM_STATE_SAMPLE = 1
"""Stream of the 50 states drawn from the rollout's pool."""
STREAM_BOX_CANDIDATES = 2
"""Stream of the generator noise of the Appendix D candidates (one sub-stream per method)."""
STREAM_TSNE_ROLLOUT = 3
"""Stream of the Appendix E rollout: its fixed initial state and the behaviour policy's noise."""
STREAM_TSNE_SAMPLES = 4
"""Stream of the generator noise of the Appendix E samples (one sub-stream per method and step)."""
STREAM_TSNE = 5
"""Stream of t-SNE's own randomness."""


def stream_seed(seed: int, stream: int, *index: int) -> int:
    """A 32-bit seed for one random stream of the analysis, from the analysed runs' seed (any
    non-negative int), the stream's id (the STREAM_* constants) and sub-indices (method, step, episode):
    numpy's SeedSequence([seed, stream, *index]). The paper seeds nothing it states; deriving every stream
    from one seed makes a rerun draw the same states, candidates and embedding, and keeps the streams
    independent of each other (adding a method does not move another method's noise)."""
    return int(np.random.SeedSequence([int(seed), int(stream), *map(int, index)]).generate_state(1)[0])


# -- the paper's settings (numbers only, so the CLI's help needs no torch) -----------------------------
ROLLOUT_STEPS = 800
"""Appendix D: the behaviour policy runs 800 env steps (resetting at every episode end): the state pool."""
BOX_STATES = 50
"""Appendix D: states drawn uniformly from the pool."""
BOX_CANDIDATES = 32
"""Appendix D: "Each method generates 32 candidate actions conditioned on the given state" (the best-of-N
N of Table 3). Figure 3's caption says N = 1000 instead; the appendix's detailed setup is followed, and
`sombench analyze --candidates` sets another N."""
TSNE_STEPS = 5
"""Appendix E.1: a 5-step rollout of the behaviour policy from a fixed initial state."""
TSNE_SAMPLES = 100
"""Appendix E.1: actions per method at each rollout step (500 per method in all)."""


# -- Appendix D: Figure 3 ----------------------------------------------------------------------------
STATE_SAMPLE_REPLACE = False
"""Appendix D draws 50 states "uniformly" from the 800-state pool without saying whether with
replacement; without replacement is chosen, so the 50 summaries are of 50 distinct visited states
(each pool index equally likely, every 50-subset equally likely)."""
Q_STD_DDOF = 0
"""Degrees of freedom of the per-state Q std: 0, the std of the candidate set itself, as Appendix D
"summarize[s] each candidate set using the mean and standard deviation of its Q-values" (not an
estimate of a population's; with 32 candidates ddof=1 would be 1.6% larger)."""


def sample_state_indices(pool_size: int, n: int, seed: int) -> np.ndarray:
    """`n` indices into a pool of `pool_size` states, drawn uniformly without replacement
    (STATE_SAMPLE_REPLACE) from stream STREAM_STATE_SAMPLE of `seed`, sorted (rollout order); [n] int64.
    ValueError if n > pool_size."""
    if n > pool_size:
        raise ValueError(f"cannot draw {n} distinct states from a pool of {pool_size}")
    rng = np.random.default_rng(stream_seed(seed, STREAM_STATE_SAMPLE))
    return np.sort(rng.choice(pool_size, size=n, replace=STATE_SAMPLE_REPLACE)).astype(np.int64)


def per_state_stats(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean [S], std [S]) over the candidates of each state of Q-values `q` [S, N] (std with Q_STD_DDOF):
    the pair of statistics Appendix D computes per state and method."""
    q = np.asarray(q, dtype=np.float64)
    return q.mean(axis=1), q.std(axis=1, ddof=Q_STD_DDOF)


@dataclasses.dataclass
class BoxSummary:
    """One method's Figure 3 distribution: per-state Q mean and std over the sampled states, and their medians."""

    label: str
    mean: np.ndarray
    """[S] the mean Q of the method's candidates at each state."""
    std: np.ndarray
    """[S] the std of the method's candidates' Q at each state."""

    @property
    def median_mean(self) -> float:
        return float(np.median(self.mean))

    @property
    def median_std(self) -> float:
        return float(np.median(self.std))


def box_summary(label: str, q: np.ndarray) -> BoxSummary:
    """`per_state_stats` of `q` [S, N] as a BoxSummary."""
    mean, std = per_state_stats(q)
    return BoxSummary(label, mean, std)


# -- Appendix E: Figures 4 and 10-12 -----------------------------------------------------------------
TSNE_PERPLEXITY = 30.0
"""t-SNE perplexity: scikit-learn's default (the paper gives none)."""
KDE_GRID = 160
"""Cells per side of the heat map's grid."""
KDE_MARGIN = 0.08
"""The grid extends this fraction of the points' range beyond them on each side."""
CONTOUR_LINES = 8
"""Appendix E.2: "8 contour lines overlaid for readability"."""


def tsne_embedding(points: np.ndarray, seed: int, perplexity: float = TSNE_PERPLEXITY, n_jobs: int | None = None) -> np.ndarray:
    """scikit-learn's t-SNE of `points` [N, d] (all methods' samples jointly, so they share one plane) to
    [N, 2], seeded from stream STREAM_TSNE of `seed`. Initialised by PCA (scikit-learn's default) where
    d >= 2; a 1-D action space has no second principal axis, so it starts from scikit-learn's random init.
    The perplexity is capped below N (t-SNE requires it)."""
    from sklearn.manifold import TSNE

    points = np.asarray(points, dtype=np.float64)
    n, d = points.shape
    tsne = TSNE(n_components=2, perplexity=min(perplexity, max(1.0, (n - 1) / 3)), init="pca" if d >= 2 else "random",
                random_state=stream_seed(seed, STREAM_TSNE) % 2**31, n_jobs=n_jobs)
    return tsne.fit_transform(points)


@dataclasses.dataclass
class QLandscape:
    """A Q-landscape on the t-SNE plane: Q smoothed by a Gaussian kernel on a regular grid."""

    x: np.ndarray
    """[G] grid x coordinates (cell centres), t-SNE units."""
    y: np.ndarray
    """[G] grid y coordinates."""
    q: np.ndarray
    """[G, G] smoothed Q at (y[i], x[j]), the critic's units (row i: y)."""
    bandwidth: np.ndarray
    """[2, 2] the Gaussian kernel's covariance (Scott's rule on the points, scipy's gaussian_kde)."""

    def levels(self, lines: int = CONTOUR_LINES) -> np.ndarray:
        """`lines` contour levels evenly spaced strictly inside the landscape's range; [lines]."""
        lo, hi = float(np.min(self.q)), float(np.max(self.q))
        return np.linspace(lo, hi, lines + 2)[1:-1]


def smoothed_q(at: np.ndarray, points: np.ndarray, q: np.ndarray, cov: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Gaussian-kernel (Nadaraya-Watson) estimate of Q at positions `at` [M, 2] from samples at `points`
    [N, 2] with values `q` [N]: sum_i K(at - p_i) q_i / sum_i K(at - p_i), K the Gaussian of covariance
    `cov` [2, 2]. It is the ratio of the Q-weighted Gaussian KDE to the unweighted one (same kernel); [M].
    Computed in log space per row, so it stays finite far from every sample (there it tends to the nearest
    sample's Q)."""
    at, points, q = (np.asarray(a, dtype=np.float64) for a in (at, points, q))
    white = np.linalg.cholesky(np.linalg.inv(cov))  # (x - p)' cov^-1 (x - p) = |(x - p) @ white|^2
    p = points @ white
    p2 = (p ** 2).sum(axis=1)
    out = np.empty(len(at))
    for start in range(0, len(at), chunk):
        z = at[start:start + chunk] @ white
        log_k = -0.5 * np.maximum((z ** 2).sum(axis=1)[:, None] + p2[None, :] - 2.0 * z @ p.T, 0.0)
        w = np.exp(log_k - log_k.max(axis=1, keepdims=True))
        out[start:start + chunk] = (w @ q) / w.sum(axis=1)
    return out


def q_landscape(embedding: np.ndarray, q: np.ndarray, grid: int = KDE_GRID, margin: float = KDE_MARGIN,
                bandwidth: np.ndarray | None = None) -> QLandscape:
    """Appendix E.2's "Gaussian kernel density estimate (KDE) heatmap" of the Q-landscape on the t-SNE
    plane, read as the Q-value field the samples' Q-values trace (a KDE of sample density alone would show
    where samples lie, not Q, and a density weighted by Q needs Q >= 0 and mixes the two): Gaussian-kernel
    regression of `q` [N] over `embedding` [N, 2] (`smoothed_q`), the kernel's covariance Scott's rule on
    the points (scipy.stats.gaussian_kde's bandwidth) unless `bandwidth` [2, 2] is given, on a `grid` x
    `grid` grid over the points' box widened by `margin` of its range on each side."""
    from scipy.stats import gaussian_kde

    embedding = np.asarray(embedding, dtype=np.float64)
    cov = np.asarray(bandwidth, dtype=np.float64) if bandwidth is not None else gaussian_kde(embedding.T).covariance
    lo, hi = embedding.min(axis=0), embedding.max(axis=0)
    pad = margin * np.maximum(hi - lo, 1e-9)
    x = np.linspace(lo[0] - pad[0], hi[0] + pad[0], grid)
    y = np.linspace(lo[1] - pad[1], hi[1] + pad[1], grid)
    xx, yy = np.meshgrid(x, y)
    values = smoothed_q(np.stack([xx.ravel(), yy.ravel()], axis=1), embedding, q, cov)
    return QLandscape(x, y, values.reshape(grid, grid), cov)


def spread(embedding: np.ndarray) -> float:
    """How diffusely a method's samples lie on the t-SNE plane: for `embedding` [T, M, 2] (M samples at each
    of T states), the mean distance of each step's points from that step's centroid, averaged over the steps
    (t-SNE units; within a state, so the distance between states' clusters does not count)."""
    embedding = np.asarray(embedding, dtype=np.float64)
    return float(np.linalg.norm(embedding - embedding.mean(axis=1, keepdims=True), axis=2).mean())


@dataclasses.dataclass
class TsnePanel:
    """One panel of the t-SNE figure: a Q-landscape and the methods' points on it."""

    title: str
    landscape: QLandscape
    points: dict[str, np.ndarray]
    """label -> [K, 2] the method's samples on the t-SNE plane."""
    q: dict[str, np.ndarray]
    """label -> [K] their Q-values."""


def tsne_panels(samples: dict[str, np.ndarray], q: dict[str, np.ndarray], seed: int,
                n_jobs: int | None = None) -> tuple[dict[str, np.ndarray], list[TsnePanel]]:
    """Appendix E: one t-SNE of every method's samples at every step jointly (`samples`: label -> [T, M, d],
    `q`: label -> [T, M]), then (the embedding: label -> [T, M, 2], the panels): first all T * M samples per
    method with the landscape of all their Q-values (Figures 10-12: 500 samples per method), then one panel
    per rollout step with that step's samples (one fixed state, as Figure 4) on the same plane and a
    landscape of that step's Q-values alone (each panel's own bandwidth and grid)."""
    labels = list(samples)
    shapes = {label: samples[label].shape for label in labels}
    flat_points = np.concatenate([samples[label].reshape(-1, shapes[label][-1]) for label in labels])
    emb = tsne_embedding(flat_points, seed, n_jobs=n_jobs)
    embedding, start = {}, 0
    for label in labels:
        t, m = shapes[label][:2]
        embedding[label] = emb[start:start + t * m].reshape(t, m, 2)
        start += t * m
    steps = shapes[labels[0]][0]
    n_each = sum(shapes[label][0] * shapes[label][1] for label in labels)
    panels = [TsnePanel(f"all {steps} steps ({' + '.join(str(shapes[lb][0] * shapes[lb][1]) for lb in labels)} = {n_each} samples)",
                        q_landscape(emb, np.concatenate([q[label].reshape(-1) for label in labels])),
                        {label: embedding[label].reshape(-1, 2) for label in labels},
                        {label: q[label].reshape(-1) for label in labels})]
    for t in range(steps):
        pts = np.concatenate([embedding[label][t] for label in labels])
        values = np.concatenate([q[label][t] for label in labels])
        panels.append(TsnePanel(f"step {t}" + (" (initial state)" if t == 0 else ""), q_landscape(pts, values),
                                {label: embedding[label][t] for label in labels}, {label: q[label][t] for label in labels}))
    return embedding, panels
