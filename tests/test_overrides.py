import pytest

from algorithms.sac import SACConfig
from sombench.errors import UserError
from sombench.overrides import apply_overrides


def test_typed_values():
    cfg, parsed = apply_overrides(SACConfig, ["batch_size=128", "actor_lr=1e-4", "hidden_sizes=64,64", "activation=relu",
                                              "warmup_steps=1e4"])
    assert cfg.batch_size == 128 and isinstance(cfg.batch_size, int)
    assert cfg.actor_lr == 1e-4
    assert cfg.hidden_sizes == (64, 64)
    assert cfg.activation == "relu"
    assert cfg.warmup_steps == 10_000 and isinstance(cfg.warmup_steps, int)
    assert parsed == {"batch_size": 128, "actor_lr": 1e-4, "hidden_sizes": (64, 64), "activation": "relu", "warmup_steps": 10_000}
    assert cfg.gamma == 0.99  # untouched fields keep the paper's defaults
    assert apply_overrides(SACConfig, ["hidden_sizes=(256,)"])[0].hidden_sizes == (256,)  # Python's 1-tuple spelling


def test_defaults_are_table_3():
    cfg = SACConfig()
    assert (cfg.hidden_sizes, cfg.activation, cfg.actor_lr, cfg.critic_lr, cfg.alpha_lr) == ((256, 256, 256), "gelu", 3e-4, 3e-4, 3e-4)
    assert (cfg.batch_size, cfg.gamma, cfg.tau, cfg.reward_scale, cfg.buffer_size, cfg.warmup_steps) == (256, 0.99, 0.005, 0.2, 10**6, 30_000)
    assert cfg.target_entropy_scale == -1.0


@pytest.mark.parametrize(
    "pair, message",
    [
        ("batchsize=128", "unknown config key 'batchsize'"),
        ("batch_size=abc", "batch_size: expected int"),
        ("batch_size=1.5", "batch_size: expected int"),
        ("actor_lr=fast", "actor_lr: expected float"),
        ("no_equals_sign", "expects key=value"),
        ("hidden_sizes=32,,32", "hidden_sizes: expected tuple"),  # a typo, not 32,32
        ("hidden_sizes=,", "hidden_sizes: expected tuple"),
    ],
)
def test_bad_pairs(pair, message):
    with pytest.raises(UserError, match=message):
        apply_overrides(SACConfig, [pair])


def test_unknown_key_lists_valid_keys():
    with pytest.raises(UserError, match="batch_size"):
        apply_overrides(SACConfig, ["nope=1"])
