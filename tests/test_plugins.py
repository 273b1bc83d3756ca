"""Algorithms from installed packages (the `sombench.algorithms` entry-point group): the README's example,
examples/sombench-uniform, is pip-installed as a real distribution (into a folder put on PYTHONPATH, so the
project's venv is left as it was) and run through `sombench run` and `sombench table` beside SAC; a plug-in
whose name clashes with a shipped algorithm is one line, exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import TINY_SAC

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow  # pip builds the example (a few seconds) and four CLI processes start torch


def pip_install(source: Path, target: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target",
                    str(target), str(source)], check=True, cwd=ROOT)


def sombench(args: list[str], plugins: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugins), os.environ.get("PYTHONPATH", "")]), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "sombench", *args], cwd=ROOT, env=env, capture_output=True, text=True)


def test_an_installed_plugin_runs_and_tables_beside_the_shipped_algorithms(tmp_path):
    plugins, results = tmp_path / "site", tmp_path / "results"
    pip_install(ROOT / "examples" / "sombench-uniform", plugins)
    assert (plugins / "sombench_uniform-0.1.0.dist-info").is_dir()  # an installed distribution, entry points and all
    common = ["--env", "Pendulum-v1", "--steps", "400", "--seeds", "2", "--eval-every", "200", "--eval-episodes", "2",
              "--results", str(results), "--threads", "1", "--device", "cpu"]
    listing = sombench(["algos"], plugins)
    assert listing.returncode == 0 and "uniform-random" in listing.stdout, listing.stderr
    ran = sombench(["run", "--algo", "uniform-random", *common, "--set", "scale=0.5"], plugins)
    assert ran.returncode == 0, ran.stderr
    sac = sombench(["run", "--algo", "sac", *common, *[a for pair in TINY_SAC for a in ("--set", pair)]], plugins)
    assert sac.returncode == 0, sac.stderr
    table = sombench(["table", "--results", str(results), "--format", "md"], plugins)
    assert table.returncode == 0, table.stderr
    rows = [line for line in table.stdout.splitlines() if line.startswith("| ")]
    assert any(r.startswith("| sac@") for r in rows) and any(r.startswith("| uniform-random@scale=0.5") for r in rows), table.stdout
    bad = sombench(["run", "--algo", "uniform-random", *common, "--set", "scale=2"], plugins)  # its own field's domain
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "scale" in bad.stderr, bad.stderr


def test_a_plugin_whose_name_clashes_is_one_line(tmp_path):
    source = tmp_path / "clash"
    source.mkdir()
    (source / "pyproject.toml").write_text(textwrap.dedent("""
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "sombench-clash"
        version = "0.1.0"
        [tool.setuptools]
        py-modules = ["sombench_clash"]
        [project.entry-points."sombench.algorithms"]
        mine = "sombench_clash:Mine"
    """))
    (source / "sombench_clash.py").write_text(textwrap.dedent("""
        from sombench_uniform import UniformRandom

        class Mine(UniformRandom):
            name = "sac"
    """))
    plugins = tmp_path / "site"
    pip_install(ROOT / "examples" / "sombench-uniform", plugins)
    pip_install(source, plugins)
    out = sombench(["run", "--algo", "sac", "--env", "Pendulum-v1", "--steps", "10", "--results", str(tmp_path / "r")], plugins)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: algorithm name 'sac' is registered twice"), out.stderr
    assert not (tmp_path / "r").exists()
