"""SOM: Score-Based One-step MeanFlow Policy Optimization (Kim, Ki, Ahn and Lee).

A MeanFlow actor u_theta(a_t, r, t, s) maps noise to an action in one network call; it is trained
to satisfy the MeanFlow identity for a target velocity built from the critic: the Monte Carlo score
of the Boltzmann policy exp(alpha Q) diffused by a VP (Section 4) or VE (Appendix B) kernel.

Algorithm 1, per update:
  1. critic:  DACER's distributional twin critic (Section 4.4), next action a' = best-of-N pi(s').
  2. actor:   a_0 from the batch; (r, t) with r <= t (`time_sampling`); a_t ~ p_t(a_t | a_0) (Eq. 1)
              s_hat = grad_{a_t} log sum_k exp(beta_Q * Qn(s, a_{0|t}^(k)))          (Eq. 5)
              v = velocity(a_t, w * s_hat / (||s_hat|| + eps), t)                    (Eq. 6, 8)
              u_tgt = sg(v - (t - r)(v . d_a u + d_t u)),  loss ||u - u_tgt||^2       (Eq. 7)
  3. targets: Polyak every `target_delay` updates (DACER); alpha every `alpha_delay` updates.
Acting (Algorithm 1's pi): N one-step candidates a = eps - u(eps, 0, 1, s), keep argmax min(Q1, Q2),
add alpha * noise_scale * N(0, I), clip to [-1, 1]. Evaluation mode: the same best-of-N, no noise.

Every choice the paper leaves open is a config field below whose docstring says what was chosen
and why; docs/som-notes.md holds the measurements behind them.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Optional

import torch

from algorithms import register
from algorithms.common.base import OffPolicyAlgorithm, adam
from algorithms.common.buffer import Batch
from algorithms.common.capabilities import Profiled, ScoreField, UpdatePhase
from algorithms.common.config import (BestOfNConfig, Boolean, ConfigError, Fraction, NonNegative, OffPolicyConfig, OneOf, OptionalOf,
                                      Positive, TemperatureConfig, param)
from algorithms.common.critics import DistributionalTwinCritic, distributional_critic_loss, distributional_targets
from algorithms.common.nets import linear_layers, matmul_shapes
from algorithms.common.meanflow import TIME_SAMPLINGS, MeanFlowActor, MeanFlowPolicy, adaptive_weighted_loss, meanflow_target, sample_times
from algorithms.common.schedules import VESchedule, VPSchedule
from algorithms.common.score import boltzmann_score, normalize_score
from algorithms.common.targets import polyak_update
from algorithms.common.temperature import LogAlpha, gaussian_noise_entropy, noise_alpha_loss


@dataclasses.dataclass
class SOMConfig(TemperatureConfig, BestOfNConfig, OffPolicyConfig):
    actor_lr: float = 1e-4
    """Table 3."""
    critic_lr: float = 1e-4
    """Table 3."""
    warmup_steps: int = 100_000
    """Table 3: 1e5 (the other algorithms use 3e4)."""
    noise_scale: float = param(0.1, Positive())
    """Exploration noise alpha * noise_scale * N(0, I) after best-of-N (Table 3, SDAC's code)."""
    init_alpha: float = 5.0
    """Initial alpha, as in SDAC's reference code (log alpha = log 5); the paper does not state it."""
    alpha_lr: float = 7e-3
    """Table 3."""
    alpha_delay: int = param(250, Positive(int))
    """Updates between alpha steps (Table 3: alpha delay update 250)."""
    target_entropy_scale: float = -0.9
    """Target entropy of the exploration noise = scale * dim(A) (Table 3)."""
    target_delay: int = param(2, Positive(int))
    """Critic target (Polyak) update every this many updates: the critic 'follows DACER' (Sec. 4.4),
    whose targets update every 2 steps. The actor updates every step, as Algorithm 1 writes it."""

    sde: str = param("vp", OneOf(("vp", "ve")))
    """'vp' (the paper's main formulation, Section 4) or 've' (Appendix B)."""
    beta_min: float = param(0.1, Positive())
    """VP beta(t) at t = 0. Not given in the paper: the standard VP schedule of Song et al. (2021)."""
    beta_max: float = param(20.0, Positive())
    """VP beta(t) at t = 1 (Song et al. 2021's 20)."""
    sigma_min: float = param(0.01, Positive())
    """VE sigma(0). Not given in the paper: iDEM's geometric schedule starts at 0.01."""
    sigma_max: float = param(1.0, Positive())
    """VE sigma(1). 1 = the width of the action box [-1, 1]; on the bandit, 1 integrated and trained best
    of 0.5/1/2 (docs/som-notes.md). Generation under VE starts from eps ~ N(0, sigma_max^2 I)."""
    vp_velocity: str = param("contracting", OneOf(("contracting", "literal")))
    """How Eq. 8's field is read under VP. 'literal': v = -0.5 beta (a + w s_hat) as the forward-time
    velocity, so one-step generation follows +0.5 beta (a + w s_hat) and the a-term expands samples by
    ~e^5 wherever the normalized score cannot cancel it (it can only at |a| = w). 'contracting':
    generation follows 0.5 beta (w s_hat - a), the drift Appendix G describes ('the prior-pull term
    -0.5 beta a alone contracts outer samples inward at early steps'). Integrated with the estimated
    score, the literal field diverges and the contracting one lands on the modes, so the default is
    the reading under which the paper's own description holds (docs/som-notes.md)."""
    num_score_samples: int = param(100, Positive(int))
    """K of Eq. 5 (Appendix C.2: 100)."""
    ve_velocity: str = param("normalized", OneOf(("normalized", "raw")))
    """The VE target velocity. 'raw': Appendix B.2 as printed, v = -0.5 d(sigma^2)/dt s_hat with the Monte
    Carlo score itself (w unused). 'normalized': Eq. 8's rescaling carried over, v = -0.5 d(sigma^2)/dt w
    s_hat / (||s_hat|| + eps). docs/som-notes.md section 9 measures both."""
    score_scale: Optional[float] = param(None, OptionalOf(NonNegative()))
    """w of Eq. 8. None = the paper's 25 (Appendix C.1) under VP; 5 under VE, where the velocity
    -0.5 d(sigma^2)/dt w s_hat is already ~2 sigma^2 log(sigma_max/sigma_min) w and w >= 10 drifted
    outward in our bandit trials (docs/som-notes.md). 0 switches the score off (the control)."""
    score_eps: float = param(1e-6, Positive())
    """epsilon of Eq. 8's normalisation (not given in the paper)."""
    inverse_temperature: Optional[float] = param(None, OptionalOf(Positive()))
    """beta_Q in exp(beta_Q * Qn). The paper writes exp(alpha Q) with alpha the exploration temperature;
    SOM's alpha machinery comes from SDAC, whose code weights by Q * 5 / alpha, so that the Boltzmann
    target sharpens as alpha anneals from 5 toward 1. None = that 5 / alpha; a number fixes beta_Q."""
    standardize_q: bool = param(True, Boolean())
    """Standardize Q over the batch's B x K proposals before the Boltzmann weights (Sec. 4.4); the mean
    and std are constants for the gradient (batch statistics, not part of any row's energy)."""
    standardize_q_over: str = param("batch", OneOf(("batch", "state")))
    """Which proposals share one mean and std when Q is standardized. Sec. 4.4: 'we normalize Q values
    across each training batch ... similar to the batch-wise advantage normalization used in GRPO'; GRPO
    normalizes within each prompt's group of samples, so the text admits two readings. 'batch' (the
    default, under which the bandit was measured): one mean and std over all B x K values; the `control`
    preset takes 'state' (docs/som-notes.md sections 16 and 21). 'state': over each state's
    K proposals, GRPO's group being the state. On the bandit (one state) they coincide; on a control task
    the spread of Q across states can swamp the spread across one state's actions (docs/som-notes.md
    section 16)."""
    clip_proposals: bool = param(True, Boolean())
    """Clip a_{0|t} proposals to the action box before the critic sees them (the critic is trained only
    inside it; SDAC and relax's iDEM actor clip likewise). Clipped proposals carry no gradient."""
    actor_action_scale: float = param(1.0, Positive())
    """The MeanFlow actor works in action units stretched by this: u(z, r, t, s) = net(c z, r, t, s) / c
    (algorithms/common/meanflow.py). 1 = the [-1, 1] box as is, the paper's setting. The actor's inputs
    are noise at the prior's scale and actions; where the prior is much narrower than 1 (the bandit's VE
    sigma_max 0.4) the network sees inputs, and must produce outputs, 2.5x smaller than the unit-scale
    ones it learns at the same rate in the bandit's own units (docs/som-notes.md section 10)."""
    time_sampling: str = param("sorted_pair", OneOf(TIME_SAMPLINGS))
    """How (r, t) are drawn (algorithms/common/meanflow.py `sample_times`). Eq. 7 writes t ~ U(0, 1)
    ('uniform_t': t uniform, r ~ U(0, t)); 'sorted_pair' sorts two uniforms, so t ~ Beta(2, 1).
    docs/som-notes.md section 9 measures both."""
    r_equals_t_fraction: float = param(0.25, Fraction())
    """Share of the batch with r = t (instantaneous velocity). Algorithm 1 only says r <= t; MeanFlow
    uses 75% on images, 25% trained best on the bandit (docs/som-notes.md)."""
    loss_weight_power: float = param(1.0, NonNegative())
    """MeanFlow's adaptive loss weight 1 / sg(L + 0.01)^p. Eq. 7 prints a plain squared error, as Eq. 3
    does for MeanFlow itself, whose reference code weights adaptively (p = 1); plain MSE (p = 0) was
    unstable on the bandit (losses up to 1e6 from |v| ~ 250 near t = 1)."""
    score_dtype: str = param("float32", OneOf(("float32", "bfloat16")))
    """dtype of the critic evaluations inside the score estimator: float32 or bfloat16 (autocast)."""

    def check(self) -> None:
        if self.beta_max < self.beta_min:
            raise ConfigError(f"beta_max ({self.beta_max:g}) must be >= beta_min ({self.beta_min:g})")
        if self.sigma_max <= self.sigma_min:
            raise ConfigError(f"sigma_max ({self.sigma_max:g}) must be > sigma_min ({self.sigma_min:g})")


def som_velocity(schedule, cfg: SOMConfig, w: float, a_t: torch.Tensor, score: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """SOM's target velocity in forward time (Eq. 6 and 8; Appendix B.2 for VE) from a raw score."""
    if cfg.sde == "ve" and cfg.ve_velocity == "raw":
        return schedule.pf_ode_drift(a_t, score, t)  # Appendix B.2: -0.5 d(sigma^2)/dt s_hat
    s_hat = normalize_score(score, w, cfg.score_eps)  # Eq. 8
    if cfg.sde == "ve":
        return schedule.pf_ode_drift(a_t, s_hat, t)  # -0.5 d(sigma^2)/dt w s_hat / ||s_hat||
    if cfg.vp_velocity == "literal":
        return schedule.pf_ode_drift(a_t, s_hat, t)  # -0.5 beta (a_t + w s_hat)
    return 0.5 * schedule.beta(t) * (a_t - s_hat)  # generation drift 0.5 beta (w s_hat - a_t), Appendix G


@register
class SOM(MeanFlowPolicy, ScoreField, Profiled, OffPolicyAlgorithm):
    name = "som"
    description = "SOM: one-step MeanFlow actor trained on critic scores (VP/VE PF-ODE), best-of-N, distributional critic."
    Config = SOMConfig
    generation_steps = 1
    update_cycle = 2
    presets = {
        # The common bandit preset (OffPolicyAlgorithm's: the critic in bandit units x2.5, lr 1e-3, four critic
        # steps per update, 500 warm-up steps), then what is SOM's own. The paper's bandit box [-2.5, 2.5]^2 is
        # 2.5x the [-1, 1] box SOM's defaults are tuned for, and the score scale w has units of 1/length, so w and
        # the VE noise widths are rescaled: the lab's working bandit setting (VE, sigma 0.01 -> 1, w 5 in bandit
        # units; docs/som-notes.md sections 4-5) is sigma 0.004 -> 0.4, w 12.5 in the algorithm's units.
        # init_alpha 1: the exploration noise alpha * 0.1 starts at the box's scale, not at 5x it. eval_particles
        # 1: evaluation returns score the generator alone. 2 x 256, batch 128, K = 32: the CPU budget of
        # docs/som-notes.md. actor_action_scale 2.5 (sections 9-10): at sigma_max 0.4 the actor sees noise and
        # actions 2.5x smaller than the bandit units the lab learns in, and learns the noise-to-mode map slowly
        # even with the true reward as Q (24% against 49% in 5,500 updates, section 10). actor_lr 3e-4: the same
        # map in half the updates (with the true reward as Q, 63% of samples in a mode after 5,500 updates
        # against 49% at 1e-4), to fit a run in minutes on a CPU.
        "bandit": {**OffPolicyAlgorithm.presets["bandit"], "sde": "ve", "sigma_min": 0.004, "sigma_max": 0.4,
                   "score_scale": 12.5, "init_alpha": 1.0, "eval_particles": 1, "hidden_sizes": (256, 256),
                   "batch_size": 128, "num_score_samples": 32, "actor_action_scale": 2.5, "actor_lr": 3e-4},
        # `make demo`: Hopper-v4 for 8,000 env steps per seed on one CPU thread, 1/625 of Table 1's 5M. Table 3's
        # values are scaled to that budget, each by a stated rule, not tuned on the demo's returns; every other
        # field keeps its default (Table 3's learning rates, N = 32, noise scale 0.1, tau, gamma; VP with w = 25;
        # init alpha 5). Width 3 x 64: Table 3's three hidden layers at a quarter of the 256 nodes, the same
        # scaling as SAC's and MFP's demo presets. batch 64: a quarter of 256, with the width; batch 256 (or width
        # 128 at batch 128) makes one update 2.5-3x slower on a CPU core, and the demo would not fit in ~5 min.
        # num_score_samples 32 (K of Eq. 5; Appendix C.2: 100): each update scores B x K proposals with input
        # gradients, 256 x 100 = 25,600 in the paper, which makes one update 0.5-2 s on a 2-core CPU (`sombench
        # latency`); K = N = 32 as in the bandit preset gives 64 x 32 = 2,048, one update ~1.3-1.5x MFP's.
        # warmup_steps 160: Table 3's 1e5 is 2% of the 5M budget, and 2% of 8,000 is 160 (SAC and MFP keep their
        # 3e4 / 5e6 share the same way, 3.3x shorter, raised to one batch). alpha_delay 1: Table 3's 250 updates
        # between alpha steps give 20,000 alpha steps over 5M; 250 here would give 32, and alpha would stay near
        # its initial 5 (noise 0.5, a quarter of the box) for the whole run. 250 x 8,000 / 5M = 0.4, so every
        # update: at alpha_lr 7e-3, alpha then settles at its target entropy after ~200-300 updates, ~3% of the
        # run, against ~60k updates, ~1% of 5M, in the paper.
        "demo": {"hidden_sizes": (64, 64, 64), "batch_size": 64, "num_score_samples": 32, "warmup_steps": 160,
                 "alpha_delay": 1},
        # Pendulum-v1 and similar small control tasks at the CPU budget of docs/benchmarks.md (10,000 env steps,
        # one thread), beside SAC at the same networks, batch and warm-up (`--set hidden_sizes=64,64 --set
        # batch_size=64 --set warmup_steps=1000`). It is the benchmark's SOM row with Table 3's learning rates
        # raised to SAC's, the one change that decided the swing-up in docs/som-notes.md section 13 (3 of 3 seeds
        # against 1 of 3; the initial alpha alone, or the alpha schedule alone, 1 of 3; either with 3e-4, 2 of 3).
        # With Table 3's actor settings what learned there was the critic alone, through best-of-32 acting: a frozen
        # actor swung up as well, and the generator scored alone (eval_particles 1) stayed at a random policy's return
        # (section 16 says why). Three settings, each an open reading of the paper, make the generator learn (sections
        # 16 and 21): Q standardised per state, plain MSE, VE. With them the generator alone gets halfway to the
        # Pendulum swing-up or further by 20,000 steps on 3 of 3 seeds (it does not hold it) and learns part of IDP
        # (4.6-7.9x the old generator at 50k), and best-of-32's returns are not detectably worse (Pendulum at 10k
        # within 12 on each seed; IDP: 3 of 3 seeds reach 9,000 by 50k against 2 of 3, one sooner, one later). Every other field keeps its default: N = 32, noise scale 0.1, init alpha 5,
        # alpha_lr 7e-3 with Table 3's delay 250, target entropy, tau, gamma, VE's sigma 0.01 -> 1 and w = 5.
        "control": {
            "hidden_sizes": (64, 64),  # the CPU benchmark's 2 x 64 for every off-policy algorithm: equal networks with SAC
            "batch_size": 64,  # the CPU benchmark's batch, with the width (SAC's too)
            "warmup_steps": 1000,  # the CPU benchmark's 1,000 uniform steps (10%), shared by every algorithm there:
            # equal terms with SAC; Table 3's 2% share (200) was not measured here
            "num_score_samples": 100,  # K of Eq. 5 as Appendix C.2 and the benchmark's row: 64 x 100 proposals per
            # update, ~17 ms an env step here with acting; the demo's K = 32 was not measured on control
            "critic_lr": 3e-4,  # Table 3's 1e-4 is set for ~5M updates; at 9,000 the critic's rate decided the
            # swing-up (section 13: 1 of 3 seeds at 1e-4; 3e-4 for both networks 3 of 3, for the critic alone
            # as well). 3e-4 is Table 3's critic rate for SAC, the comparison
            "actor_lr": 3e-4,  # Table 3's SAC actor rate, with the critic's; measured with it (3 of 3). Under
            # section 13's actor settings the actor's rate did not change the returns (critic alone at 3e-4, or a
            # frozen actor, the same); under the three below a frozen actor's generator stays at a random
            # policy's return (section 21)
            # alpha_delay stays 250 (Table 3), so over 9,000 updates alpha only falls from 5 to ~4 (noise std 0.5 ->
            # 0.4). The demo's rescaling (250 x 10,000 / 5M, raised to 1: alpha at its target ~0.98 within ~300
            # updates) was measured and is not adopted: alone 1 of 3 seeds, with 3e-4 rates 2 of 3 (seed 1 -431);
            # init_alpha 1 with 3e-4 rates 2 of 3 as well (seed 2 -558)
            "standardize_q_over": "state",  # GRPO's group read as the state (Sec. 4.4 names GRPO): over the batch, one
            # Pendulum state's 100 proposals differ by 0.006-0.03 standardised units, the Boltzmann weights are
            # uniform and the target carries no preference (regret 0.98 against 0.39 per state; section 16)
            "loss_weight_power": 0.0,  # Eq. 7's plain squared error: MeanFlow's adaptive weight gives the near-zero
            # small-t rows the same pull as the large-t rows that carry the transport, and the state-dependent sign
            # of the field at large t is never fitted (fixed critic, 12,000 actor steps: regret 1.14 against 0.60)
            "sde": "ve",  # Appendix B's VE: under VP the generator learns nothing under either weight, and under
            # MSE collapses to one wrong action per state (section 16: -1,569 and -1,442 acting best-of-32)
        },
    }

    state_attributes = ("mean_std", "updates")
    """Besides its networks, optimizers and buffer: the critics' running sigma and the update counter.
    `prior_std`, `w` and `target_entropy` are derived from the config here, and recomputed on resume."""

    def __init__(self, obs_dim: int, act_dim: int, config: SOMConfig, device: torch.device):
        super().__init__(obs_dim, act_dim, config, device)
        cfg = config
        self.schedule = VPSchedule(cfg.beta_min, cfg.beta_max) if cfg.sde == "vp" else VESchedule(cfg.sigma_min, cfg.sigma_max)
        self.prior_std = 1.0 if cfg.sde == "vp" else cfg.sigma_max
        self.w = cfg.score_scale if cfg.score_scale is not None else (25.0 if cfg.sde == "vp" else 5.0)
        self.actor = MeanFlowActor(obs_dim, act_dim, cfg, cfg.actor_action_scale).to(self.device)
        self.critic = DistributionalTwinCritic(obs_dim, act_dim, cfg.hidden_sizes, cfg.activation,
                                               cfg.critic_action_scale).to(self.device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.temperature = LogAlpha(cfg.init_alpha).to(self.device)
        self.actor_opt = adam(self.actor.parameters(), cfg.actor_lr, self.device)
        self.critic_opt = adam(self.critic.parameters(), cfg.critic_lr, self.device)
        self.alpha_opt = adam(self.temperature.parameters(), cfg.alpha_lr, self.device)
        self.mean_std = torch.full((2,), -1.0, device=self.device)  # DACER's running sigma, unset
        self.target_entropy = cfg.target_entropy_scale * act_dim
        self.updates = 0

    # -- acting (Algorithm 1's pi): best-of-N one-step candidates (MeanFlowPolicy), then noise --
    def exploration_std(self) -> torch.Tensor:
        return self.temperature.alpha * self.config.noise_scale

    # -- the target velocity (Eq. 5, 6, 8) ------------------------------------------------------
    def inverse_temperature(self) -> torch.Tensor:
        cfg = self.config
        if cfg.inverse_temperature is not None:
            return torch.tensor(cfg.inverse_temperature, device=self.device)
        return 5.0 / self.temperature.alpha.detach()

    def score(self, obs: torch.Tensor, a_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The Monte Carlo score of Eq. 5 at (s, a_t, t) with the current critic (input gradients only)."""
        cfg = self.config
        k = cfg.num_score_samples
        states = obs.repeat_interleave(k, dim=0)  # row b * k + j pairs with proposal j of state b

        def q_fn(actions: torch.Tensor) -> torch.Tensor:
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=cfg.score_dtype == "bfloat16"):
                return self.critic.min_q(states, actions)

        self.critic.requires_grad_(False)
        try:
            return boltzmann_score(q_fn, a_t, t, self.schedule, k, self.inverse_temperature(), cfg.standardize_q,
                                   clip=1.0 if cfg.clip_proposals else None, standardize_over=cfg.standardize_q_over)
        finally:
            self.critic.requires_grad_(True)

    def velocity(self, a_t: torch.Tensor, score: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Forward-time velocity v (MeanFlow convention: generation subtracts it) from a raw score."""
        return som_velocity(self.schedule, self.config, self.w, a_t, score, t)

    # -- one update (Algorithm 1) ---------------------------------------------------------------
    compiled_methods = ("act_step", "update_step")

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        cfg = self.config
        self.updates += 1  # the delays are decided here, outside the compiled step (a counter would recompile it)
        return self.update_step(batch, target_step=self.updates % cfg.target_delay == 0,
                                alpha_step=self.updates % cfg.alpha_delay == 0)

    def update_step(self, batch: Batch, target_step: bool, alpha_step: bool) -> dict[str, torch.Tensor]:
        critic_metrics = self.critic_step(batch)
        actor_metrics = self.actor_step(batch)
        alpha = self.delayed_steps(target_step, alpha_step)
        c, a = critic_metrics, actor_metrics  # in the order train.csv has always had
        return {"critic_loss": c["critic_loss"], "actor_loss": a["actor_loss"], "q_mean": c["q_mean"], "q_std": c["q_std"],
                "alpha": alpha, "velocity_norm": a["velocity_norm"]}

    def critic_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        """1. critic (DACER's distributional loss); the next action is best-of-N pi(s')."""
        cfg = self.config
        with torch.no_grad():
            next_action = self.best_of_n(batch.next_obs, cfg.num_particles)
            t_mu, t_sigma = self.critic_target(batch.next_obs, next_action)
            y, y_sample = distributional_targets(t_mu, t_sigma, cfg.reward_scale * batch.reward, batch.terminated, cfg.gamma)
        mu, sigma = self.critic(batch.obs, batch.action)
        critic_loss, new_mean_std = distributional_critic_loss(mu, sigma, y, y_sample, self.mean_std, cfg.tau)
        self.mean_std.copy_(new_mean_std)
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()
        return {"critic_loss": critic_loss.detach(), "q_mean": mu.detach().mean(), "q_std": sigma.detach().mean()}

    def actor_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        """2. actor: MeanFlow regression on the score-based velocity (Eq. 1, 5, 6/8, 7)."""
        cfg = self.config
        b = batch.obs.shape[0]
        r, t = sample_times(b, cfg.r_equals_t_fraction, self.device, mode=cfg.time_sampling)
        a_t = self.schedule.perturb(batch.action, torch.randn_like(batch.action), t)
        v = self.velocity(a_t, self.score(batch.obs, a_t, t), t)
        u, u_tgt = meanflow_target(lambda z, r_, t_: self.actor(z, r_, t_, batch.obs), a_t, r, t, v)
        actor_loss = adaptive_weighted_loss(u, u_tgt, cfg.loss_weight_power)
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_opt.step()
        return {"actor_loss": actor_loss.detach(), "velocity_norm": v.norm(dim=-1).mean().detach()}

    def delayed_steps(self, target_step: bool, alpha_step: bool) -> torch.Tensor:
        """3. the delayed target (Polyak) and temperature updates; returns alpha before its step."""
        cfg = self.config
        if target_step:
            polyak_update(self.critic, self.critic_target, cfg.tau)
        alpha = self.temperature.alpha.detach()
        if alpha_step:
            entropy = gaussian_noise_entropy(self.temperature.alpha, cfg.noise_scale, self.act_dim)
            alpha_loss = noise_alpha_loss(self.temperature.log_alpha, entropy, self.target_entropy)
            self.alpha_opt.zero_grad(set_to_none=True)
            alpha_loss.backward()
            self.alpha_opt.step()
        return alpha

    # -- where the update's time goes (`sombench latency --breakdown`) --------------------------------
    def update_breakdown(self, batch: Batch) -> list[UpdatePhase]:
        """The parts of one update, each runnable on its own, with the matrix products of its network
        evaluations (algorithms/common/nets.py `matmul_shapes`): the floor each part is compared against."""
        cfg = self.config
        b, n, k = batch.obs.shape[0], cfg.num_particles, cfg.num_score_samples
        actor, critic = linear_layers(self.actor), linear_layers(self.critic)
        r, t = sample_times(b, cfg.r_equals_t_fraction, self.device, mode=cfg.time_sampling)
        a_t = self.schedule.perturb(batch.action, torch.randn_like(batch.action), t)

        def next_action() -> torch.Tensor:
            with torch.no_grad():
                return self.best_of_n(batch.next_obs, n)

        return [
            UpdatePhase("critic step", lambda: self.critic_step(batch),
                        matmul_shapes(actor, b * n) + matmul_shapes(critic, b * n) + matmul_shapes(critic, b)
                        + matmul_shapes(critic, b, input_grads=True, weight_grads=True)),
            UpdatePhase("best-of-N next action", next_action, matmul_shapes(actor, b * n) + matmul_shapes(critic, b * n),
                        parent="critic step"),
            UpdatePhase("actor step", lambda: self.actor_step(batch),
                        matmul_shapes(critic, b * k, input_grads=True, action_grad=True)
                        + matmul_shapes(actor, b, forwards=2, input_grads=True, weight_grads=True)),
            UpdatePhase("score (Eq. 5)", lambda: self.score(batch.obs, a_t, t),
                        matmul_shapes(critic, b * k, input_grads=True, action_grad=True), parent="actor step"),
            UpdatePhase("targets and alpha", lambda: self.delayed_steps(True, False), [], per_update=1.0 / cfg.target_delay),
        ]

    def bare_forwards(self, batch: int) -> dict[str, Callable[[], torch.Tensor]]:
        """The two network calls acting is made of, bare, at the acting batch N: the actor's one step on
        N noises and the twin critic's min over them (`sombench latency`'s reference rows)."""
        eps = self.prior_std * torch.randn((batch, self.act_dim), device=self.device)
        obs = torch.randn((batch, self.obs_dim), device=self.device)
        zeros, ones = torch.zeros((batch, 1), device=self.device), torch.ones((batch, 1), device=self.device)
        return {"actor": lambda: self.actor(eps, zeros, ones, obs), "critic": lambda: self.critic.min_q(obs, eps)}

    # -- the score field of algorithms/common/capabilities.py (sombench bandit's figures) ---------
    def score_field(self, obs: torch.Tensor, a_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.score(obs, a_t, t)

    def diffusion_kernel(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.schedule.marginal_kernel(t)
