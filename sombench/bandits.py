"""The paper's 2-D bandits as Gymnasium environments (SOM Section 5.2, Appendix F): one-step episodes
with a constant observation, so every algorithm trains on them through the same runner and its
critic learns r(a).

`sombench/EightGaussians-v0`: reward = the eight-Gaussian mixture density normalised to [0, 1]
(Appendix F.1). The action box is [-2.5, 2.5]^2: the modes sit at radius sqrt 2, which a [-1, 1]
box cannot hold (inside it the corners, which are low modes, would score highest).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from sombench.mixtures import eight_gaussians, eight_gaussians_reward

BOX = 2.5


class EightGaussiansBandit(gym.Env):
    observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = gym.spaces.Box(-BOX, BOX, (2,), np.float32)

    def __init__(self):
        self.mixture = eight_gaussians()

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(1, np.float32), {}

    def step(self, action):
        a = torch.as_tensor(np.asarray(action, dtype=np.float64)).reshape(1, 2)
        r = float(eight_gaussians_reward(a, self.mixture)[0])
        return np.zeros(1, np.float32), r, True, False, {}


BANDITS = {
    "sombench/EightGaussians-v0": "2-D bandit: eight-Gaussian reward in [0, 1], box [-2.5, 2.5]^2 (Appendix F.1)",
}

gym.register("sombench/EightGaussians-v0", entry_point=EightGaussiansBandit, max_episode_steps=1)
