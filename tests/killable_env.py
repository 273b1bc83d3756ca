"""A Pendulum that SIGKILLs its own process after a set number of steps (crash-resume tests).

The kill point comes from the environment variable SOMBENCH_KILL_AFTER_STEPS (steps counted over
every instance in the process, evaluation included); SOMBENCH_SIGINT_AFTER_STEPS sends SIGINT instead
(a Ctrl-C, once); unset, the env is plain Pendulum-v1. Killing
from inside `env.step` makes the crash deterministic: the test does not race the run's file writes
with a polling loop, and the run is still ended by a real SIGKILL with no chance to clean up.
"""

from __future__ import annotations

import os
import signal

import gymnasium as gym
from gymnasium.envs.classic_control.pendulum import PendulumEnv

ENV_ID = "SombenchKillablePendulum-v0"
_steps_in_process = 0


class KillablePendulum(PendulumEnv):
    def step(self, action):
        global _steps_in_process
        _steps_in_process += 1
        limit = os.environ.get("SOMBENCH_KILL_AFTER_STEPS")
        if limit is not None and _steps_in_process >= int(limit):
            os.kill(os.getpid(), signal.SIGKILL)
        interrupt = os.environ.get("SOMBENCH_SIGINT_AFTER_STEPS")
        if interrupt is not None and _steps_in_process == int(interrupt):
            os.kill(os.getpid(), signal.SIGINT)
        return super().step(action)


if ENV_ID not in gym.registry:
    gym.register(ENV_ID, entry_point=KillablePendulum, max_episode_steps=200)
