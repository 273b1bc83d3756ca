"""What a user discovers from the CLI: the choices in --help are the ones the code accepts, flags take no
value, `sombench algos NAME` lists every config field, and a structured error names its option."""

from __future__ import annotations

import dataclasses

import algorithms
from conftest import assert_one_line_error
from sombench.bandit.tasks import TASKS
from sombench.cli import options
from sombench.cli.main import error_line
from sombench.errors import InvalidValue, UserError


def test_the_offered_choices_are_the_accepted_ones():
    assert [t.value for t in options.Task] == list(TASKS)
    from sombench.analysis.regress import suite_names

    assert [s.value for s in options.Suite] == suite_names()
    registered = sorted(n for n in algorithms.load_all() if not n.startswith("test-"))  # conftest registers test-*
    assert options._algorithm_modules() == registered  # the --algo help names the registry


def test_help_shows_choices_and_flags(cli):
    code, out, _ = cli(["table", "--help"])
    assert code == 0 and "<rich|md|latex|csv|json>" in out
    paper_line = next(line for line in out.splitlines() if "--paper" in line)
    assert "<bool>" not in paper_line
    code, out, _ = cli(["sweep", "--help"])
    assert code == 0 and "Ray and Slurm" in out and "<local|ray|slurm>" in out


def test_algos_name_lists_every_config_field_with_the_preset_applied(cli):
    code, out, _ = cli(["algos", "som", "--preset", "bandit"])
    assert code == 0, out
    cls = algorithms.get("som")
    for field in dataclasses.fields(cls.Config):
        assert field.name in out, field.name
    assert "critic_action_scale" in out and "2.5 *" in out  # the bandit preset's value, marked
    code, out, err = cli(["algos", "som", "--preset", "nope"])
    assert_one_line_error(code, out, err, "--preset 'nope'")
    code, out, err = cli(["algos", "nosuch"])
    assert_one_line_error(code, out, err, "unknown algorithm 'nosuch'")


def test_structured_errors_name_the_option():
    assert error_line(InvalidValue("eval_every", "must be a positive integer, got 0")) == \
        "error: --eval-every must be a positive integer, got 0"
    assert error_line(UserError("plain words")) == "error: plain words"
