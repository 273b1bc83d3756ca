"""The research labs (labs/) take bad input as the CLI does: one line on stderr, exit 2, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from algorithms.common.config import ConfigError
from labs import run_lab
from sombench.errors import InvalidValue

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("exc, line", [(InvalidValue("set", "'x=1': unknown config key 'x'"), "error: --set 'x=1': unknown config key 'x'"),
                                       (ConfigError("sigma_max (0.1) must be > sigma_min (1)"), "error: sigma_max (0.1) must be > sigma_min (1)")])
def test_run_lab_turns_bad_input_into_one_line_and_exit_2(exc, line, capsys):
    def main() -> None:
        raise exc

    with pytest.raises(SystemExit) as stop:
        run_lab(main)
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip() == line


def test_a_lab_with_an_unknown_set_key_exits_2_without_a_traceback():
    proc = subprocess.run([sys.executable, "-m", "labs.sdac_lab", "ideal", "--k", "4", "--set", "nope=1"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: --set 'nope=1': unknown config key 'nope'") and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and proc.stdout == ""
