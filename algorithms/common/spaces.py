"""Action scaling between the algorithms' canonical box [-1, 1]^d and an env's Box."""

from __future__ import annotations

import numpy as np


class ActionScaler:
    """Affine map between [-1, 1]^d (where every algorithm acts, Table 3 convention) and [low, high]."""

    def __init__(self, low: np.ndarray, high: np.ndarray):
        low = np.asarray(low, dtype=np.float64)
        high = np.asarray(high, dtype=np.float64)
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
            raise ValueError("the action space must have finite bounds")
        if np.any(high <= low):
            raise ValueError("the action space must have high > low in every dimension")
        self.low, self.high = low, high
        self._center = (high + low) / 2
        self._half = (high - low) / 2

    def to_env(self, action: np.ndarray) -> np.ndarray:
        """[-1, 1] -> [low, high], clipping first so no out-of-box action ever reaches the env."""
        return (self._center + self._half * np.clip(action, -1.0, 1.0)).astype(np.float32)

    def from_env(self, action: np.ndarray) -> np.ndarray:
        """[low, high] -> [-1, 1]."""
        return ((np.asarray(action, dtype=np.float64) - self._center) / self._half).astype(np.float32)
