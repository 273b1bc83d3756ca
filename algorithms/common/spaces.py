"""Action scaling between the algorithms' canonical box [-1, 1]^d and an env's Box."""

from __future__ import annotations

import numpy as np


class ActionScaler:
    """Affine map between [-1, 1]^d (where every algorithm acts, Table 3 convention) and [low, high]."""

    def __init__(self, low: np.ndarray, high: np.ndarray, shape: tuple[int, ...] | None = None,
                 dtype: np.dtype | type = np.float32):
        """`low`, `high`: the env Box's bounds, any shape (flattened here); `shape` and `dtype`: the Box's own,
        which `to_env` returns (default: flat float32). ValueError for infinite bounds, high <= low, a shape
        that does not hold the bounds' size, or a non-floating dtype."""
        low = np.asarray(low, dtype=np.float64).reshape(-1)
        high = np.asarray(high, dtype=np.float64).reshape(-1)
        self.shape = tuple(shape) if shape is not None else low.shape
        self.dtype = np.dtype(dtype)
        if int(np.prod(self.shape)) != low.size:
            raise ValueError(f"an action shape {self.shape} cannot hold {low.size} bounds")
        if not np.issubdtype(self.dtype, np.floating):
            raise ValueError(f"the action space must have a floating dtype, not {self.dtype}")
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
            raise ValueError("the action space must have finite bounds")
        if np.any(high <= low):
            raise ValueError("the action space must have high > low in every dimension")
        self.low, self.high = low, high
        self._center = (high + low) / 2
        self._half = (high - low) / 2
        # the bounds in the env's dtype, rounded inwards, so the cast action is inside the Box the env checks
        self._low_cast = _round_inwards(low, self.dtype, up=True).reshape(self.shape)
        self._high_cast = _round_inwards(high, self.dtype, up=False).reshape(self.shape)

    def to_env(self, action: np.ndarray) -> np.ndarray:
        """Flat [-1, 1]^d (shape (d,)) -> the env's Box: its shape and dtype, inside [low, high] after the
        cast (clipping before and after, so no out-of-box action ever reaches the env)."""
        flat = self._center + self._half * np.clip(np.asarray(action, dtype=np.float64).reshape(-1), -1.0, 1.0)
        return np.clip(flat.reshape(self.shape).astype(self.dtype), self._low_cast, self._high_cast)

    def from_env(self, action: np.ndarray) -> np.ndarray:
        """[low, high] -> [-1, 1]."""
        return ((np.asarray(action, dtype=np.float64).reshape(-1) - self._center) / self._half).astype(np.float32)


def _round_inwards(bound: np.ndarray, dtype: np.dtype, up: bool) -> np.ndarray:
    """`bound` cast to `dtype`, moved one step inwards where the cast rounded it outwards."""
    cast = bound.astype(dtype)
    outside = cast.astype(np.float64) < bound if up else cast.astype(np.float64) > bound
    towards = np.array(np.inf if up else -np.inf, dtype=dtype)
    return np.where(outside, np.nextafter(cast, towards), cast)
