"""Entropy of a sample-only policy by a per-state Gaussian-mixture fit (DACER, Wang et al. 2024;
`estimate_entropy` of the DACER reference code, relax/algorithm/dacer.py).

A diffusion policy has no tractable log-density, so for each state the actions it samples are fitted
with a K-component full-covariance Gaussian mixture (scikit-learn's EM) and the mixture's entropy is
approximated by

    H ~= sum_k w_k H(N(mu_k, Sigma_k)) - sum_k w_k log w_k,   H(N) = 0.5 d (1 + log 2 pi) + 0.5 log det Sigma,

which is exact when the components do not overlap (and an upper bound otherwise). The estimate is
averaged over states. It runs on the host (numpy + scikit-learn), so callers should invoke it only
rarely (DACER: every 10,000 updates): it synchronises with the device.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def gaussian_entropy(cov: np.ndarray) -> float:
    """Differential entropy of N(mu, cov) in nats: 0.5 d (1 + log 2 pi) + 0.5 log det cov."""
    d = cov.shape[0]
    return 0.5 * d * (1.0 + math.log(2 * math.pi)) + 0.5 * float(np.linalg.slogdet(cov)[1])


def gmm_entropy_per_state(samples: np.ndarray | torch.Tensor, n_components: int = 3, random_state: int = 42) -> np.ndarray:
    """samples [B, S, d] (S actions for each of B states) -> [B] mixture-entropy estimates.

    `random_state` 42 as in the reference code (EM's k-means initialisation is then reproducible)."""
    # imported lazily: only the algorithms that use it pay for it
    from sklearn.mixture import GaussianMixture
    from threadpoolctl import threadpool_limits

    if isinstance(samples, torch.Tensor):
        samples = samples.detach().to("cpu", torch.float64).numpy()
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim != 3:
        raise ValueError(f"samples must be [states, samples, dim], got shape {samples.shape}")
    out = np.empty(samples.shape[0])
    # one BLAS/OpenMP thread: the matrices are tiny (200 x d), and on a busy machine threads that wait
    # for each other made each fit about 5x slower in our measurements
    with threadpool_limits(limits=1):
        for b, points in enumerate(samples):
            gmm = GaussianMixture(n_components=n_components, covariance_type="full", random_state=random_state).fit(points)
            w = gmm.weights_
            component = np.array([gaussian_entropy(c) for c in gmm.covariances_])
            out[b] = float(np.sum(w * component) - np.sum(w * np.log(w)))
    return out


def gmm_entropy(samples: np.ndarray | torch.Tensor, n_components: int = 3, random_state: int = 42) -> float:
    """The mean over states of `gmm_entropy_per_state` (DACER's policy-entropy estimate)."""
    return float(gmm_entropy_per_state(samples, n_components, random_state).mean())
