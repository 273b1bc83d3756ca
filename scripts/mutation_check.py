"""Mutation check: do the fast tests catch a broken baseline? (issue 25)

Each entry of MUTATIONS below is a named, semantic fault of the kind that leaves an algorithm running and
learning something, just not the published algorithm: the max instead of the min over the target critics,
the online critic in place of the target, a dropped terminal mask or reward scale, a gradient clip removed,
the critic stepped before the actor's loss or twice, acting with the wrong actor, advantages left
unnormalised, a loss term dropped, ... Each names the file, the exact snippet it replaces (it must occur
exactly once), the replacement, and the fast test files expected to kill it.

The script copies the working tree (`git ls-files`: tracked files and untracked ones that are not ignored,
so new tests count before they are committed) into a temporary folder, never touching this checkout; runs
the named test files there once unmutated (they must pass, or nothing can be concluded); then, for each
mutation in turn, applies it, runs `python -m pytest -x -q -m "not slow and not full"` on its test files
with the scratch copy first on the import path, and restores the file. A mutation is killed when pytest
fails (the first failing test is reported), survives when it passes. It prints one row per mutation and
exits 1 if any mutation survived, if a snippet no longer occurs exactly once (the list must not rot
silently as the code moves: fix the entry), or if the unmutated tests fail.

Why a small script over a named list and not mutmut (or cosmic-ray): those tools mutate operators at random
(`+` to `-`, `<` to `<=`, a constant to another), so most of their mutants are not the faults issue 25 names
(which critic, which actor, which mask, which order), many are equivalent or die on an import, and the
survivors have to be triaged by hand; a full mutmut run over algorithms/ on this project's 2 CPU cores,
with the fast tests as its oracle, takes hours. A named list is reviewable in a diff, runs in minutes,
says which test answers for which fault, and fails loudly when the code it targets changes.

Usage:
    python scripts/mutation_check.py                  # every mutation (make mutation-check)
    python scripts/mutation_check.py --only sdac-      # the ids starting with any of the given prefixes
    python scripts/mutation_check.py --list           # the mutations, without running anything
    python scripts/mutation_check.py --markdown FILE  # also write the result table as Markdown
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARKER = "not slow and not full"
TIMEOUT_S = 600


@dataclasses.dataclass(frozen=True)
class Mutation:
    id: str
    file: str
    edits: tuple[tuple[str, str], ...]
    """(exact snippet, replacement) pairs, applied in order; each snippet must occur exactly once."""
    tests: tuple[str, ...]
    """Test files (or node ids) that must kill it, run with the fast-test marker."""
    what: str


def m(id: str, file: str, edits: list[tuple[str, str]] | tuple[str, str], tests: list[str] | str, what: str) -> Mutation:
    edits = [edits] if isinstance(edits, tuple) else edits
    tests = [tests] if isinstance(tests, str) else tests
    return Mutation(id, file, tuple(edits), tuple(f"tests/{t}" for t in tests), what)


TD_CALL = "td_target(batch.reward, next_q, batch.terminated, cfg.gamma, cfg.reward_scale)"
DIFF_TD_CALL = "y = " + TD_CALL
TARGETS = "test_critic_targets.py"

MUTATIONS: list[Mutation] = [
    # -- shared: algorithms/common --------------------------------------------------------------------------------
    m("td-target-no-terminal-mask", "algorithms/common/critics.py",
      ("return reward_scale * reward + gamma * (1.0 - terminated) * next_value", "return reward_scale * reward + gamma * next_value"),
      [TARGETS], "the shared TD helper bootstraps through terminal states"),
    m("td-target-no-reward-scale", "algorithms/common/critics.py",
      ("return reward_scale * reward + gamma * (1.0 - terminated) * next_value",
       "return reward + gamma * (1.0 - terminated) * next_value"), [TARGETS], "the shared TD helper ignores the reward scale"),
    m("min-q-is-q1", "algorithms/common/critics.py",
      ("return self(obs, action).min(dim=0).values", "return self(obs, action)[0]"),
      "test_critics.py", "TwinCritic.min_q returns Q1 instead of min(Q1, Q2)"),
    m("min-q-is-q1-sdac-tests", "algorithms/common/critics.py",
      ("return self(obs, action).min(dim=0).values", "return self(obs, action)[0]"), "test_sdac.py",
      "the same, against SDAC's tests alone (their best-of-N check used to stub min_q itself)"),
    m("min-q-is-q1-qsm-tests", "algorithms/common/critics.py",
      ("return self(obs, action).min(dim=0).values", "return self(obs, action)[0]"), "test_qsm.py",
      "the same, against QSM's tests alone (their best-of-N checks used to stub min_q itself)"),
    m("distributional-target-max", "algorithms/common/critics.py",
      ("next_mean = torch.minimum(target_mu[0], target_mu[1])", "next_mean = torch.maximum(target_mu[0], target_mu[1])"),
      ["test_critics.py", TARGETS], "DACER/SOM back up the larger target mean"),
    m("clip-gradients-disabled", "algorithms/common/diffusion_losses.py",
      ("    if max_norm is not None:\n        torch.nn.utils.clip_grad_norm_(module.parameters(), max_norm)", "    return None"),
      ["test_qvpo.py", "test_dipo.py"], "the shared gradient-norm clip does nothing"),

    # -- BestOfNDiffusion.critic_loss (SDAC, DPMD, QSM) --------------------------------------------------------------
    m("bond-critic-max", "algorithms/common/diffusion_losses.py",
      ("next_q = self.critic_target(batch.next_obs, next_action).min(dim=0).values",
       "next_q = self.critic_target(batch.next_obs, next_action).max(dim=0).values"),
      [TARGETS], "max instead of min over the target critics"),
    m("bond-critic-online", "algorithms/common/diffusion_losses.py",
      ("next_q = self.critic_target(batch.next_obs, next_action).min(dim=0).values",
       "next_q = self.critic(batch.next_obs, next_action).min(dim=0).values"),
      [TARGETS], "the online critic in place of the target"),
    m("bond-critic-no-terminal-mask", "algorithms/common/diffusion_losses.py",
      (DIFF_TD_CALL, "y = td_target(batch.reward, next_q, torch.zeros_like(batch.terminated), cfg.gamma, cfg.reward_scale)"),
      [TARGETS], "(1 - terminated) dropped"),
    m("bond-policy-actions-target-critic", "algorithms/common/diffusion_losses.py",
      ("action = best_of_n(sample, self.critic.min_q, obs, n or cfg.num_particles)",
       "action = best_of_n(sample, self.critic_target.min_q, obs, n or cfg.num_particles)"), ["test_sdac.py", "test_qsm.py"],
      "the training policy's best-of-N rated by the target critic, not the current one"),
    m("bond-critic-no-reward-scale", "algorithms/common/diffusion_losses.py",
      (DIFF_TD_CALL, "y = td_target(batch.reward, next_q, batch.terminated, cfg.gamma, 1.0)"),
      [TARGETS], "the reward scale dropped"),

    # -- SAC -----------------------------------------------------------------------------------------------------
    m("sac-target-no-entropy", "algorithms/sac.py",
      ("next_q = self.critic_target.min_q(batch.next_obs, next_action) - alpha * next_log_prob",
       "next_q = self.critic_target.min_q(batch.next_obs, next_action)"), [TARGETS], "(own) SAC's soft target without -alpha log pi"),
    m("sac-target-online-critic", "algorithms/sac.py",
      ("next_q = self.critic_target.min_q(batch.next_obs, next_action) - alpha * next_log_prob",
       "next_q = self.critic.min_q(batch.next_obs, next_action) - alpha * next_log_prob"), [TARGETS],
      "(own) the online critic in SAC's target"),
    m("sac-target-plain", "algorithms/sac.py", (TD_CALL, "batch.reward + cfg.gamma * next_q"), [TARGETS],
      "(own) r + gamma next_q: no reward scale, no terminal mask"),
    m("sac-actor-target-critic", "algorithms/sac.py",
      ("actor_loss = (alpha * log_prob - self.critic.min_q(batch.obs, action)).mean()",
       "actor_loss = (alpha * log_prob - self.critic_target.min_q(batch.obs, action)).mean()"), ["test_core.py"],
      "(own) SAC's actor maximises the target critic"),

    # -- MFP -----------------------------------------------------------------------------------------------------
    m("mfp-target-plain", "algorithms/mfp.py", (TD_CALL, "batch.reward + cfg.gamma * next_q"), [TARGETS, "test_mfp.py"],
      "(own) r + gamma next_q"),
    m("mfp-target-online-critic", "algorithms/mfp.py",
      ("next_q = self.critic_target.min_q(batch.next_obs, next_action)", "next_q = self.critic.min_q(batch.next_obs, next_action)"),
      [TARGETS, "test_mfp.py"], "(own) the online critic in MFP's target"),
    m("mfp-swapped-best-of-n", "algorithms/mfp.py",
      ("a_star, next_action = both[:b], both[b:]", "next_action, a_star = both[:b], both[b:]"), [TARGETS, "test_mfp.py"],
      "(own) the critic bootstraps at a*(s) and the actor regresses onto a*(s')"),
    m("mfp-no-ivc", "algorithms/mfp.py",
      ("actor_loss = mf_loss + cfg.ivc_weight * ivc_loss", "actor_loss = mf_loss"), ["test_mfp.py"],
      "(own) MFP's instantaneous velocity constraint dropped"),

    # -- QVPO ----------------------------------------------------------------------------------------------------
    m("qvpo-no-grad-clips", "algorithms/qvpo.py",
      [("clip_gradients(self.critic, cfg.grad_clip)", "pass"), ("clip_gradients(self.actor, cfg.grad_clip)", "pass")],
      ["test_qvpo.py"], "both gradient clips removed"),
    m("qvpo-target-plain", "algorithms/qvpo.py", (TD_CALL, "batch.reward + cfg.gamma * next_q"), [TARGETS, "test_qvpo.py"],
      "critic target r + gamma next_q (no reward scale, no terminal mask)"),
    m("qvpo-next-action-online-critic", "algorithms/qvpo.py",
      ("self.critic_target.min_q, batch.next_obs, cfg.target_particles)", "self.critic.min_q, batch.next_obs, cfg.target_particles)"),
      ["test_qvpo.py"],
      "(own) QVPO selects its next action by the online critic"),
    m("qvpo-next-action-online-actor", "algorithms/qvpo.py",
      ('actor = getattr(self, "actor_target", None) or self.actor', "actor = self.actor"),
      ["test_baselines_vs_reference.py::test_critic_target_samples_the_polyak_target_actor"],
      "QVPO's critic target samples the current actor, not the authors' Polyak target actor (issue 25, item 3)"),
    m("qvpo-entropy-decay-fixed", "algorithms/qvpo.py",
      ("run_steps = self.run_steps or cfg.default_run_steps", "run_steps = 1_000_000"),
      ["test_baselines_vs_reference.py::test_entropy_weight_at_half_of_a_5e6_step_run_is_001"],
      "QVPO's entropy weight decays over a fixed 1e6 steps, not the run's length (issue 25, item 3)"),
    m("harness-no-run-length", "sombench/train/trainer.py",
      ("        self.algo.run_steps = spec.total_steps", "        pass"),
      ["test_runner.py::test_the_harness_gives_the_algorithm_the_runs_length"],
      "the trainer does not tell the algorithm the run's length"),
    m("qvpo-weights-no-baseline", "algorithms/qvpo.py",
      ("return idx, (top - v).clamp_min(0.0)", "return idx, top.clamp_min(0.0)"), ["test_qvpo.py"],
      "(own) QVPO's weights without the advantage baseline V(s)"),

    # -- DIPO ----------------------------------------------------------------------------------------------------
    m("dipo-no-grad-clips", "algorithms/dipo.py",
      [("clip_gradients(self.critic, cfg.grad_clip)", "pass"), ("clip_gradients(self.actor, cfg.grad_clip)", "pass")],
      ["test_dipo.py"], "both gradient clips removed"),
    m("dipo-target-plain", "algorithms/dipo.py", (TD_CALL, "batch.reward + cfg.gamma * next_q"), [TARGETS, "test_dipo.py"],
      "critic target r + gamma next_q (no reward scale, no terminal mask)"),
    m("dipo-next-action-online-actor", "algorithms/dipo.py",
      ("next_actor = self.actor_target if cfg.target_actor else self.actor", "next_actor = self.actor"), [TARGETS, "test_dipo.py"],
      "the critic target's next action from the online actor"),
    m("dipo-ascent-descends", "algorithms/dipo.py",
      ("(-self.critic.min_q(obs, a).sum()).backward()", "(self.critic.min_q(obs, a).sum()).backward()"), ["test_dipo.py"],
      "(own) the action 'ascent' descends Q"),
    m("dipo-clones-unimproved", "algorithms/dipo.py",
      ("actor_loss = weighted_ddpm_loss(self.actor, self.schedule, policy_obs, improved)",
       "actor_loss = weighted_ddpm_loss(self.actor, self.schedule, policy_obs, policy_actions)"), ["test_dipo.py"],
      "(own) the actor clones the actions before the ascent"),

    # -- SDAC ----------------------------------------------------------------------------------------------------
    m("sdac-critic-step-before-actor", "algorithms/sdac.py",
      [("        critic_loss, q = self.critic_loss(batch, actions[:b])\n",
        "        critic_loss, q = self.critic_loss(batch, actions[:b])\n        self.critic_opt.step()\n"),
       ("        # 3. critic step, temperature\n        self.critic_opt.step()\n", "        # 3. critic step, temperature\n")],
      ["test_sdac.py", TARGETS], "the critic steps before the actor loss"),
    m("sdac-critic-step-twice", "algorithms/sdac.py",
      ("        # 3. critic step, temperature\n        self.critic_opt.step()\n",
       "        # 3. critic step, temperature\n        self.critic_opt.step()\n        self.critic_opt.step()\n"),
      ["test_sdac.py", TARGETS], "the critic's Adam step taken twice"),
    m("sdac-acts-with-online-actor", "algorithms/common/diffusion_losses.py",
      ("return self.actor if target is None else target", "return self.actor"), ["test_sdac.py"],
      "acting with the online actor instead of the Polyak copy"),
    m("sdac-weights-negated", "algorithms/sdac.py",
      ("w = sdac_weights(q, self.inverse_temperature())", "w = sdac_weights(-q, self.inverse_temperature())"), ["test_sdac.py"],
      "(own) SDAC's weights favour low Q"),
    m("sdac-reverse-samples-add-noise", "algorithms/sdac.py",
      ("x_t.unsqueeze(1) - schedule.sqrt_recipm1_abar", "x_t.unsqueeze(1) + schedule.sqrt_recipm1_abar"), ["test_sdac.py"],
      "(own) the reverse samples add the noise instead of removing it"),
    m("sdac-weights-without-beta", "algorithms/sdac.py",
      ("return torch.softmax(beta * q.detach(), dim=1)", "return torch.softmax(q.detach(), dim=1)"), ["test_sdac.py"],
      "(own) SDAC's weights ignore the inverse temperature"),
    m("sdac-actions-plain-samples", "algorithms/sdac.py",
      ("actions = self.policy_actions(states)", "actions = self.generate(states)"), ["test_sdac.py", TARGETS],
      "(own) SDAC's training actions skip best-of-N and the noise (the acting copy's plain samples)"),

    # -- DPMD ----------------------------------------------------------------------------------------------------
    m("dpmd-weights-unnormalised", "algorithms/dpmd.py",
      ("weights = dpmd_weights(q, self.q_mean, self.q_std, alpha, cfg.weight_clip)",
       "weights = dpmd_weights(q, torch.zeros(()), torch.ones(()), alpha, cfg.weight_clip)"), ["test_dpmd.py"],
      "(own) DPMD's weights ignore the running statistics"),
    m("dpmd-weights-precedence-bug", "algorithms/dpmd.py",
      ("return torch.exp(((q.detach() - mean) / std).clamp(-clip, clip) / alpha)",
       "return torch.exp((q.detach() - mean / std).clamp(-clip, clip) / alpha)"), ["test_dpmd.py"],
      "(own) the reference's q - m / s"),
    m("dpmd-critic-step-twice", "algorithms/dpmd.py",
      ("        critic_loss, q_data = self.critic_loss(batch, next_action)\n        self.critic_opt.step()\n",
       "        critic_loss, q_data = self.critic_loss(batch, next_action)\n        self.critic_opt.step()\n        self.critic_opt.step()\n"),
      ["test_dpmd.py", TARGETS], "(own) the reference's double critic step"),

    # -- QSM -----------------------------------------------------------------------------------------------------
    m("qsm-target-single-sample", "algorithms/qsm.py",
      ("next_action = self.policy_actions(batch.next_obs, cfg.target_particles)",
       "next_action = self.actor.sample(batch.next_obs, self.schedule, cfg.prior_std).clamp(-1.0, 1.0)"), ["test_qsm.py", TARGETS],
      "a critic target without best-of-N or noise"),
    m("qsm-target-no-noise", "algorithms/qsm.py",
      ("next_action = self.policy_actions(batch.next_obs, cfg.target_particles)",
       "next_action = self.best_of_n(batch.next_obs, cfg.target_particles or cfg.num_particles)"), ["test_qsm.py", TARGETS],
      "(own) best-of-N without the exploration noise in the critic target"),
    m("qsm-targets-every-other-update", "algorithms/qsm.py",
      ("        self.critic_opt.step()\n        self.update_targets()\n",
       "        self.critic_opt.step()\n        if self.updates % 2:\n            self.update_targets()\n"), ["test_qsm.py"],
      "(own) Polyak targets only every other update"),
    m("qsm-score-from-target-critic", "algorithms/qsm.py",
      ("qsm_target(self.critic, obs, noisy,", "qsm_target(self.critic_target, obs, noisy,"), ["test_qsm.py"],
      "(own) the actor's target from the target critic's gradient"),
    m("qsm-target-sign", "algorithms/qsm.py",
      ("return (-m_q * grad / q.shape[0]).detach()", "return (m_q * grad / q.shape[0]).detach()"), ["test_qsm.py"],
      "(own) the noise target +M_q grad Q (descends Q)"),

    # -- DACER ---------------------------------------------------------------------------------------------------
    m("dacer-target-online-critic", "algorithms/dacer.py",
      ("t_mu, t_sigma = self.critic_target(batch.next_obs, next_action)", "t_mu, t_sigma = self.critic(batch.next_obs, next_action)"),
      [TARGETS, "test_dacer.py"], "(own) the online critic in DACER's backups"),
    m("dacer-target-no-reward-scale", "algorithms/dacer.py",
      ("distributional_targets(t_mu, t_sigma, cfg.reward_scale * batch.reward, batch.terminated, cfg.gamma)",
       "distributional_targets(t_mu, t_sigma, batch.reward, batch.terminated, cfg.gamma)"), [TARGETS, "test_dacer.py"],
      "(own) DACER's backups without the reward scale"),
    m("dacer-actor-minimises-q", "algorithms/dacer.py",
      ("actor_loss = -self.critic.min_q(batch.obs, self.policy(batch.obs, noisy)).mean()",
       "actor_loss = self.critic.min_q(batch.obs, self.policy(batch.obs, noisy)).mean()"), ["test_dacer.py"],
      "(own) DACER's actor loss with the wrong sign"),
    m("dacer-actor-after-critic-step", "algorithms/dacer.py",
      [("        critic_loss.backward()\n\n        # 2. entropy", "        critic_loss.backward()\n        self.critic_opt.step()\n\n        # 2. entropy"),
       ("            self.last_actor_loss = actor_loss.detach()\n        self.critic_opt.step()\n",
        "            self.last_actor_loss = actor_loss.detach()\n")],
      ["test_dacer.py"], "(own) DACER's actor sees the stepped critic"),

    # -- SOM -----------------------------------------------------------------------------------------------------
    m("som-target-online-critic", "algorithms/som.py",
      ("t_mu, t_sigma = self.critic_target(batch.next_obs, next_action)", "t_mu, t_sigma = self.critic(batch.next_obs, next_action)"),
      [TARGETS, "test_som.py"], "(own) the online critic in SOM's backups"),
    m("som-target-no-terminal-mask", "algorithms/som.py",
      ("distributional_targets(t_mu, t_sigma, cfg.reward_scale * batch.reward, batch.terminated, cfg.gamma)",
       "distributional_targets(t_mu, t_sigma, cfg.reward_scale * batch.reward, 0.0 * batch.terminated, cfg.gamma)"),
      [TARGETS, "test_som.py"], "(own) SOM bootstraps through terminal states"),
    m("som-actor-without-score", "algorithms/som.py",
      ("v = self.velocity(a_t, self.score(batch.obs, a_t, t), t)", "v = self.velocity(a_t, torch.zeros_like(a_t), t)"),
      "test_som.py::test_actor_step_regresses_onto_the_velocity_of_its_score",  # the file's first tests take 30 s
      "(own) SOM's velocity without the score"),

    # -- PPO -----------------------------------------------------------------------------------------------------
    m("ppo-no-advantage-normalisation", "algorithms/ppo.py",
      ("adv = (adv - adv.mean()) / (adv.std() + 1e-8)", "pass"), ["test_ppo.py"], "advantage normalisation deleted"),
    m("ppo-surrogate-max", "algorithms/ppo.py",
      ("return -torch.minimum(ratio * adv, ratio.clamp(1.0 - clip, 1.0 + clip) * adv).mean()",
       "return -torch.maximum(ratio * adv, ratio.clamp(1.0 - clip, 1.0 + clip) * adv).mean()"), ["test_ppo.py"],
      "(own) the clipped objective's max instead of min"),
    m("ppo-gae-no-terminal-mask", "algorithms/ppo.py",
      ("delta = rewards[t] + gamma * (1.0 - terminated[t]) * next_values[t] - values[t]",
       "delta = rewards[t] + gamma * next_values[t] - values[t]"), ["test_ppo.py"], "(own) GAE bootstraps through terminal states"),

    # -- the harness (hand-verified before this script) -------------------------------------------------------------------
    m("analysis-imports-torch", "sombench/analysis/aggregate.py",
      ("import numpy as np\n", "import numpy as np\nimport torch  # noqa: F401\n"), ["test_analysis_imports.py"],
      "reading results imports torch"),
    m("sdac-revision-not-raised", "algorithms/sdac.py", ("    revision = 2  #", "    revision = 1  #"),
      ["test_reliability.py::test_a_run_of_an_earlier_algorithm_revision_is_refused_not_resumed[sdac-True]"],
      "SDAC's defaults changed but its revision did not: old runs would resume with the new behaviour"),
    m("revision-not-in-identity", "sombench/runs/spec.py",
      ('            "algo_revision": algorithm_class(self.algo).revision,\n', ""),
      ["test_reliability.py::test_a_run_of_an_earlier_algorithm_revision_is_refused_not_resumed[sdac-True]"],
      "runs do not record their algorithm's revision"),
    # issue 24's faults
    m("eval-shares-training-rng", "sombench/train/trainer.py",
      ("    with private_rng(evaluation_seed(seed, env_step, episodes)):", "    with contextlib.nullcontext():"),
      ["test_faults.py::test_the_evaluation_schedule_changes_neither_training_nor_the_shared_evaluations[dacer]"],
      "evaluation draws its noise from the training streams"),
    m("nan-final-averaged", "sombench/analysis/aggregate.py",
      ("    if not math.isfinite(value):\n        return f\"final return is", "    if False:\n        return f\"final return is"),
      ["test_faults.py::test_a_nan_seed_is_left_out_of_its_cell_and_named"],
      "a NaN final return enters (and voids) its cell"),
    m("regress-nan-passes", "sombench/analysis/regress.py",
      ("        if bad:  # a collapsed seed", "        bad = [o for o in outs if o[\"status\"] not in FINISHED]\n        if bad:  # a collapsed seed"),
      ["test_faults.py::test_regress_fails_an_entry_with_a_nan_final"],
      "regress reads a NaN final as missing evidence"),
    m("scaler-flat-action", "algorithms/common/spaces.py",
      ("return np.clip(flat.reshape(self.shape).astype(self.dtype), self._low_cast, self._high_cast)",
       "return flat.astype(np.float32)"),
      ["test_faults.py::test_the_scaler_returns_the_box_shape_and_dtype_inside_its_bounds"],
      "actions reach the env flat and float32 whatever the Box"),
    m("grid-is-intersection", "sombench/analysis/aggregate.py",
      ("    steps = np.array([s for s in union if start <= s <= end], dtype=int)",
       "    steps = np.array(sorted(set.intersection(*[set(int(s) for s in f[\"env_step\"]) for f in frames])), dtype=int)"),
      ["test_faults.py::test_seeds_on_different_schedules_share_one_grid_with_values_carried_forward"],
      "seeds on different schedules meet only at their shared steps"),
    # issue 26's update-to-data ratio
    m("update-ratio-ignored", "algorithms/common/base.py",
      ("        return num * trained_steps // den - num * (trained_steps - 1) // den", "        return 1"),
      ["test_update_ratio.py"], "--updates-per-step is recorded but every env step still gets one update"),
    m("update-ratio-float-drift", "algorithms/common/base.py",
      ("        ratio = fractions.Fraction(str(config.updates_per_step)).limit_denominator(10**6)",
       "        ratio = fractions.Fraction(config.updates_per_step)"),
      ["test_update_ratio.py"], "R taken as the binary float (0.2 = 3602879701896397/2^54): floor(R t) drifts from the decimal ratio"),
    m("act-batch-one-draw", "algorithms/common/best_of_n.py",
      ("        action = self.best_of_n(obs, n)\n", "        action = self.best_of_n(obs[:1], n).expand(obs.shape[0], -1)\n"),
      ["test_act_batch.py"], "acting on N envs draws one best-of-N action and gives it to every env"),
    # issue 26's vector envs
    m("vector-snapshot-no-mujoco-data", "sombench/envs.py",
      ('        snap["mujoco_data"] = pickle.dumps(data)  # all of mjData: the step\'s derived quantities too\n', ""),
      ["test_vector_envs.py"], "an env snapshot leaves out MuJoCo's simulator state: a resumed MuJoCo env restarts from another state"),
    m("vector-snapshot-no-wrapper-state", "sombench/envs.py",
      ("        if not isinstance(layer, gym.Wrapper):\n            break\n        layer = layer.env\n",
       "        break\n"),
      ["test_vector_envs.py"], "an env snapshot keeps the base env's attributes only: the TimeLimit's elapsed steps are lost"),
    m("vector-warmup-in-vector-steps", "sombench/train/trainer.py",
      ("        uniform = min(max(algo.warmup_steps - self.step, 0), n)", "        uniform = n if self.step < algo.warmup_steps else 0"),
      ["test_vector_envs.py"], "the warm-up counted in whole vector steps: N envs act uniformly past warmup_steps"),
    m("vector-updates-per-vector-step", "sombench/train/trainer.py",
      ("        for t in range(max(before + 1, warmup), self.step + 1):", "        for t in range(max(self.step, warmup), self.step + 1):"),
      ["test_vector_envs.py"], "one env step's updates per vector step: updates / env steps is R / N, not R"),
    m("vector-ppo-interleaved-rollout", "algorithms/ppo.py",
      ("        order = torch.arange(n, device=self.device).reshape(n // envs, envs).T.reshape(-1)",
       "        order = torch.arange(n, device=self.device)"),
      ["test_vector_envs.py"], "PPO's GAE runs over the N envs' interleaved steps as if they were one trajectory"),
    m("vector-old-checkpoint-env-rng-ignored", "sombench/train/trainer.py",
      ('            self.envs.set_attr("np_random", [env_rng])', "            pass"),
      ["test_vector_envs.py::test_a_checkpoint_written_before_vector_envs_still_resumes_exactly"],
      "a checkpoint of the earlier format resumes with a fresh env random stream"),
    m("vector-resume-without-whole-reset", "sombench/train/trainer.py",
      ("        self.envs.reset(seed=vector_seeds(spec.seed, self.num_envs))\n", ""),
      ["test_vector_envs.py::test_an_interrupted_hopper_run_with_three_envs_resumes_mid_episode_exactly"],
      "a resumed sync vector env resets only its ended envs before it was ever reset whole (Gymnasium then fails)"),
    # issue 27's tracking
    m("tracking-skips-finished-runs", "sombench/train/trainer.py",
      ("        if spec.track.backends:\n            track_finished_run(spec, run)\n", ""),
      ["test_tracking.py::test_track_on_a_finished_run_sends_its_stored_rows_once"],
      "--track on a rerun of a finished run sends nothing"),
    m("paper-rows-miss-variants", "sombench/analysis/aggregate.py",
      ('    ours = {a.split("@", 1)[0].lower(): a.split("@", 1)[0] for a in table.algos}', '    ours = {a.lower(): a for a in table.algos}'),
      ["test_table.py::test_paper_rows_come_with_variants_of_their_algorithms"], "table --paper shows no paper row beside som@demo"),
    m("bandit-grid-counts-samples", "sombench/app/bandit.py",
      ('        report["grid"] = mode_report(task, grid)', '        report["grid"] = mode_report(task, points[: len(grid)])'),
      ["test_bandits.py::test_bandit_reports_the_papers_grid_measure_beside_the_sample_counts"],
      "the 'grid' counts are of fresh samples, not of the 7x7 grid's endpoints (Appendix H.3)"),
    m("analyze-q-std-is-range", "sombench/analysis/policy_analysis.py",
      ("    return q.mean(axis=1), q.std(axis=1, ddof=Q_STD_DDOF)", "    return q.mean(axis=1), np.ptp(q, axis=1)"),
      ["test_analyze.py"], "Figure 3's per-state spread is the range of Q, not its std"),
    m("projection-calls-update-blindly", "sombench/measure/timing.py",
      ('    if callable(getattr(algo, "update", None)):', "    if True:"),
      ["test_faults.py::test_the_readme_plugin_is_projected_and_timed_without_an_update_method"],
      "the cost projection and latency call update(batch) on a plug-in that trains through train_step alone"),
    m("tensorboard-no-purge", "sombench/train/tracking.py",
      ("purge_step=None if fresh else after + 1", "purge_step=None"),
      ["test_tracking.py::test_trackers_hold_each_csv_row_once_across_kills_and_a_resume_that_starts_tracking"],
      "a resumed run's TensorBoard keeps what a killed session wrote past its marker: those steps appear twice"),
    m("wandb-marker-per-row", "sombench/train/tracking.py",
      ('    durable = False\n    """Rows are certain only once', '    durable = True\n    """Rows are certain only once'),
      ["test_tracking.py::test_trackers_hold_each_csv_row_once_across_kills_and_a_resume_that_starts_tracking"],
      "W&B's marker trusts rows its service process may lose on SIGKILL: a killed session's rows go missing"),
    m("critic-updates-ignored", "algorithms/common/base.py",
      ("        for _ in range(self.config.critic_updates - 1):\n            self.critic_step(",
       "        for _ in range(0):\n            self.critic_step("),
      ["test_critic_settings.py"], "critic_updates makes no extra critic steps (the bandit preset's 4 silently 1) (own)"),
    m("twin-critic-ignores-action-scale", "algorithms/common/critics.py",
      ("        return self.net(critic_inputs(obs, action, self.action_scale)).squeeze(-1)",
       "        return self.net(torch.cat([obs, action], dim=-1)).squeeze(-1)"),
      ["test_critic_settings.py"], "the plain twin critic ignores critic_action_scale (only SOM's and DACER's stretch) (own)"),
    m("dacer-critic-step-without-step", "algorithms/dacer.py",
      ("        critic_loss, mu, sigma = self.critic_gradients(batch)\n        self.critic_opt.step()\n",
       "        critic_loss, mu, sigma = self.critic_gradients(batch)\n"),
      ["test_critic_settings.py"], "DACER's extra critic steps compute gradients but never step (own)"),
    m("upgrade-fills-preset-values", "sombench/runs/spec.py",
      ("    defaults = json_ready(dataclasses.asdict(algorithm_class(spec.algo).Config()))",
       "    defaults = json_ready(dataclasses.asdict(spec._reference_config))"),
      ["test_critic_settings.py"], "a stored run missing a new field takes the preset's value: an old bandit run passes for the new preset (own)"),
    m("score-state-standardisation-is-batch", "algorithms/common/score.py",
      ('    dims = None if standardize_over == "batch" else (1,)', "    dims = None"),
      ["test_som.py::test_q_standardised_per_state_makes_each_states_score_blind_to_an_affine_change_of_its_own_q"],
      "standardize_q_over='state' silently standardises over the whole batch (own)"),
    m("stop-signals-override-nohup", "sombench/train/executors.py",
      ("        if sig != signal.SIGINT and signal.getsignal(sig) == signal.SIG_IGN:", "        if False:"),
      ["test_stop_signals.py"], "a run started under nohup stops on SIGHUP (own)"),
    m("stop-signals-respect-ignored-sigint", "sombench/train/executors.py",
      ("        if sig != signal.SIGINT and signal.getsignal(sig) == signal.SIG_IGN:",
       "        if signal.getsignal(sig) == signal.SIG_IGN:"),
      ["test_stop_signals.py"], "a background job (SIGINT inherited ignored) ignores Ctrl-C (own)"),
    m("labs-bad-set-tracebacks", "labs/__init__.py",
      ("    except (UserError, ConfigError) as exc:", "    except ConfigError as exc:"),
      ["test_labs.py"], "a lab's unknown --set key ends in a traceback, not one line and exit 2 (own)"),
    m("run-hint-at-default-threads", "sombench/measure/cost.py",
      ("    torch.set_num_threads(spec.threads)\n", ""),
      ["test_sweep.py::test_the_run_hint_times_updates_at_the_runs_own_thread_count"],
      "the run's cost hint is timed at torch's default thread count, not the run's (own)"),
    m("critic-report-peak-is-max", "sombench/train/bandit.py",
      ("    region_peak = {name: float(q[[lab == name for lab in labels]].max()) / true_peak for name in names}",
       "    region_peak = {name: float(q.max()) / true_peak for name in names}"),
      ["test_bandits.py::test_critic_report_reads_a_perfect_critic_and_a_lowered_peak"],
      "the critic report gives every region the grid's maximum: uneven peaks look even (own)"),
    m("tracker-skips-stored-rows", "sombench/train/tracking.py",
      ("            tracker.send_rows(train_rows, eval_rows)\n", ""),
      ["test_tracking.py::test_trackers_hold_each_csv_row_once_across_kills_and_a_resume_that_starts_tracking"],
      "a resumed run's trackers miss the rows stored before they were opened"),
]


# -- running ---------------------------------------------------------------------------------------------------------

def scratch_copy() -> Path:
    """The working tree's tracked and unignored files, copied into a fresh temporary folder."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            check=True, capture_output=True).stdout.decode().split("\0")
    dest = Path(tempfile.mkdtemp(prefix="sombench-mutation-"))
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def stale_edits(scratch: Path, mutation: Mutation) -> list[str]:
    """Why the mutation cannot be applied (a missing file, a snippet found 0 or several times); [] if it can."""
    path = scratch / mutation.file
    if not path.is_file():
        return [f"{mutation.file} does not exist"]
    text, problems = path.read_text(), []
    for old, new in mutation.edits:
        count = text.count(old)
        if count != 1:
            problems.append(f"snippet found {count} times in {mutation.file}: {old.strip().splitlines()[0][:70]!r}")
        else:
            text = text.replace(old, new)
    return problems


def run_tests(scratch: Path, tests: tuple[str, ...]) -> tuple[int, str, float]:
    """(pytest's exit code, its output, seconds) for the tests in the scratch copy."""
    env = {**os.environ, "PYTHONPATH": str(scratch), "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-m", MARKER, *tests]
    start = time.perf_counter()
    try:
        done = subprocess.run(cmd, cwd=scratch, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
        return done.returncode, done.stdout + done.stderr, time.perf_counter() - start
    except subprocess.TimeoutExpired:
        return -1, f"timed out after {TIMEOUT_S} s", time.perf_counter() - start


def first_failure(output: str) -> str:
    """The first FAILED / ERROR node id of a pytest run (with -x: the one that stopped it)."""
    for line in output.splitlines():
        hit = re.match(r"(FAILED|ERROR) (\S+)", line)
        if hit:
            return hit.group(2)
    return "(pytest error)"


def check_imports(scratch: Path) -> None:
    """The scratch copy, not this checkout (installed in editable mode), must be what the tests import."""
    env = {**os.environ, "PYTHONPATH": str(scratch)}
    out = subprocess.run([sys.executable, "-c", "import algorithms, sombench; print(algorithms.__file__); print(sombench.__file__)"],
                         cwd=scratch, env=env, check=True, capture_output=True, text=True).stdout.split()
    if not all(Path(p).resolve().is_relative_to(scratch.resolve()) for p in out):
        sys.exit(f"error: the scratch copy is not what Python imports ({out}); nothing was checked")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", metavar="PREFIX", help="run the mutations whose id starts with one of these")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--markdown", type=Path, help="also write the result table to this file")
    parser.add_argument("--keep", action="store_true", help="keep the scratch copy (its path is printed)")
    args = parser.parse_args(argv)

    chosen = [x for x in MUTATIONS if not args.only or any(x.id.startswith(p) for p in args.only)]
    if len({x.id for x in MUTATIONS}) != len(MUTATIONS):
        sys.exit("error: duplicate mutation ids")
    if args.list:
        for x in chosen:
            print(f"{x.id:36} {x.file:38} {' '.join(t.removeprefix('tests/') for t in x.tests):44} {x.what}")
        return 0
    if not chosen:
        sys.exit("error: no mutation matches --only")

    started = time.perf_counter()
    scratch = scratch_copy()
    rows: list[tuple[str, str, str, float]] = []
    try:
        check_imports(scratch)
        stale = {x.id: stale_edits(scratch, x) for x in chosen}
        tests = tuple(dict.fromkeys(t for x in chosen if not stale[x.id] for t in x.tests))
        print(f"scratch copy: {scratch}\nbaseline: the {len(tests)} test files unmutated ...", flush=True)
        code, output, seconds = run_tests(scratch, tests)
        if code != 0:
            print(output[-4000:])
            print(f"error: the unmutated tests fail (exit {code}, {seconds:.0f} s): fix them first; no mutation was run")
            return 1
        print(f"baseline: passed in {seconds:.0f} s\n", flush=True)
        for x in chosen:
            if stale[x.id]:
                rows.append((x.id, "STALE", "; ".join(stale[x.id]), 0.0))
                print(f"{x.id:36} STALE     {rows[-1][2]}", flush=True)
                continue
            path = scratch / x.file
            original = path.read_text()
            text = original
            for old, new in x.edits:
                text = text.replace(old, new)
            path.write_text(text)
            try:
                code, output, seconds = run_tests(scratch, x.tests)
            finally:
                path.write_text(original)
            if code == 0:
                verdict, by = "SURVIVED", "passed: " + " ".join(t.removeprefix("tests/") for t in x.tests)
            elif code == -1:
                verdict, by = "killed", output
            elif code == 5:
                verdict, by = "NO TESTS", "no test was collected"
            else:
                verdict, by = "killed", first_failure(output).removeprefix("tests/")
            rows.append((x.id, verdict, by, seconds))
            print(f"{x.id:36} {verdict:9} {by}  ({seconds:.0f} s)", flush=True)
    finally:
        if args.keep:
            print(f"kept: {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)

    bad = [r for r in rows if r[1] != "killed"]
    summary = (f"{len(rows) - len(bad)} of {len(rows)} mutations killed in {time.perf_counter() - started:.0f} s "
               f"(the unmutated baseline included)" + (f"; not killed: {', '.join(r[0] for r in bad)}" if bad else ""))
    print("\n" + summary)
    if args.markdown:
        write_markdown(args.markdown, rows, {x.id: x for x in chosen}, summary)
    return 1 if bad else 0


def write_markdown(path: Path, rows: list[tuple[str, str, str, float]], by_id: dict[str, Mutation], summary: str) -> None:
    """The result table, with what produced it."""
    lines = ["# Mutation check", "",
             "Generated by `make mutation-check` (`python scripts/mutation_check.py --markdown docs/mutation-check.md`) on "
             f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPU cores: {summary}. Each row is one named fault applied "
             "to a scratch copy of the tree; 'killed by' is the first fast test that failed (`pytest -x`). "
             "'(own)' marks faults beyond issue 25's list. The script's docstring says why a named list and not mutmut.",
             "", "| mutation | file | fault | result | killed by | s |", "| --- | --- | --- | --- | --- | --- |"]
    lines += [f"| `{i}` | {by_id[i].file} | {by_id[i].what} | {v} | `{b}` | {sec:.0f} |" for i, v, b, sec in rows]
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
