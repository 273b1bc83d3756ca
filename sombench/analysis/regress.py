"""`sombench regress`: small-budget runs of every registered algorithm, compared with reference bands.

The suites live in `sombench/data/regress/suites.json` (each entry: algorithm, env, steps, seeds,
evaluation episodes, preset, --set pairs, the smallest drop that may fail, and why). Every entry is a
real run through the runner (`run_seed`) into a results store, several seeds on a local process pool.

The reference bands live in `sombench/data/regress/bands.json`, per suite and entry
(`algo|env|steps`): the config they were measured with, every seed's final return (so the test can be
recomputed), their mean, standard deviation and 95% CI (Student t), and provenance: date, git commit,
package versions, CPU, threads.

The test, per entry, on the final returns (each seed's last evaluation):

    regressed  <=>  Welch's t-test (unequal variances; scipy.stats.ttest_ind(new, ref, equal_var=False,
                    alternative="less")) finds the new mean lower at alpha = 0.05,
                AND the drop mean(ref) - mean(new) exceeds the minimum effect
                    max(entry's `floor` (return units), 1 x the reference seeds' standard deviation),

so run-to-run noise (and a significant but tiny shift) does not fail CI while a broken algorithm does.
A rise by as much is reported as `improved` (never a failure). An entry whose band was measured with
another config or budget is `stale` (rerun with --update), one without a band `new`; a run that fails
is `failed`. Exit 1 if anything regressed or failed.

`--update` replaces the bands of the entries it ran with the fresh results and their provenance.
The verdict table is drawn by sombench/render/regress.py.
"""

from __future__ import annotations

import dataclasses
import json
import math
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from sombench.errors import InvalidValue, UserError
from sombench.runs.outcome import FINISHED

ALPHA = 0.05
SPREAD = 1.0
"""Minimum effect: this many reference standard deviations (or the entry's floor, whichever is larger)."""
BANDS_FORMAT = 1


def data_dir() -> Path:
    return Path(str(resources.files("sombench") / "data" / "regress"))


@dataclasses.dataclass(frozen=True)
class Entry:
    algo: str
    env: str
    steps: int
    seeds: int
    eval_episodes: int
    floor: float
    sets: tuple[str, ...]
    preset: str | None = None
    why: str = ""

    @property
    def key(self) -> str:
        return f"{self.algo}|{self.env}|{self.steps}"


def suite_names(path: Path | None = None) -> list[str]:
    """The suites the suite file defines (`ci`, `nightly`), in its order."""
    return list(json.loads((path or data_dir() / "suites.json").read_text())["suites"])


def load_suite(name: str, path: Path | None = None) -> list[Entry]:
    doc = json.loads((path or data_dir() / "suites.json").read_text())
    suites = doc["suites"]
    if name not in suites:
        raise InvalidValue("suite", f"{name!r} is not a suite; choose one of: {', '.join(suites)}")
    suite = suites[name]
    if "scale" in suite:
        scale = suite["scale"]
        base = load_suite(scale["from"], path)
        return [dataclasses.replace(e, seeds=int(scale.get("seeds", e.seeds)), steps=int(e.steps * scale.get("steps_factor", 1)))
                for e in base]
    return [Entry(e["algo"], e["env"], int(e["steps"]), int(e["seeds"]), int(e["eval_episodes"]), float(e["floor"]),
                  tuple(e.get("set", ())), e.get("preset"), e.get("why", "")) for e in suite["entries"]]


def load_bands(path: Path | None = None) -> dict[str, Any]:
    path = path or data_dir() / "bands.json"
    if not path.exists():
        return {"format": BANDS_FORMAT, "suites": {}}
    try:
        doc = json.loads(path.read_text())
    except OSError as exc:
        raise InvalidValue("bands", f"{path} cannot be read ({exc.strerror or type(exc).__name__}); give a bands JSON file") from None
    except ValueError:
        raise UserError(f"{path} is not valid JSON; restore it from git or rebuild it with the regress update option") from None
    if not isinstance(doc, dict):
        raise UserError(f"{path} is not a bands file (a JSON object with `suites`); restore it from git")
    return doc


def summary(values: list[float]) -> dict[str, float]:
    from sombench.analysis.stats import mean_ci

    mean, half = mean_ci(values)
    std = float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
    return {"mean": float(mean), "ci95": float(half), "std": std}


def compare(ref: list[float], new: list[float], floor: float) -> dict[str, Any]:
    """The verdict for one entry: Welch's one-sided t-test at ALPHA and the minimum effect (module docstring)."""
    from scipy import stats

    r, n = summary(ref), summary(new)
    drop = r["mean"] - n["mean"]
    min_drop = max(floor, SPREAD * (r["std"] if math.isfinite(r["std"]) else 0.0))
    if len(ref) < 2 or len(new) < 2:
        p_low = p_high = math.nan
    elif np.std(ref) == 0 and np.std(new) == 0:
        p_low = 0.0 if drop > 0 else 1.0  # no noise at all: any drop is certain
        p_high = 0.0 if drop < 0 else 1.0
    else:
        p_low = float(stats.ttest_ind(new, ref, equal_var=False, alternative="less").pvalue)
        p_high = float(stats.ttest_ind(new, ref, equal_var=False, alternative="greater").pvalue)
    if p_low < ALPHA and drop > min_drop:
        verdict = "REGRESSED"
    elif p_high < ALPHA and -drop > min_drop:
        verdict = "improved"
    else:
        verdict = "ok"
    return {"verdict": verdict, "ref": r, "new": n, "drop": drop, "min_drop": min_drop, "p": p_low}


def band_for(entry: Entry, specs: list, finals: list[float], prov: dict[str, Any]) -> dict[str, Any]:
    return {"algo": entry.algo, "env": entry.env, "steps": entry.steps, "preset": entry.preset, "set": list(specs[0].set_pairs),
            "eval_episodes": entry.eval_episodes, "seeds": [s.seed for s in specs], "finals": finals, **summary(finals),
            "provenance": prov}


def evaluate(entries: list[Entry], specs: dict[str, list], outcomes: dict[str, list[dict[str, Any]]], bands: dict[str, Any],
             suite: str) -> list[dict[str, Any]]:
    """One row per entry: its finals, its band, and the verdict."""
    rows = []
    stored = bands.get("suites", {}).get(suite, {})
    for entry in entries:
        outs = outcomes[entry.key]
        finals = [float(o["final_return"]) for o in outs if o["status"] in FINISHED and o.get("final_return") is not None]
        row: dict[str, Any] = {"entry": entry, "finals": finals, "band": stored.get(entry.key)}
        bad = [o for o in outs if o["status"] not in FINISHED]
        bad += [{**o, "reason": f"final return {o['final_return']} is not finite"} for o in outs
                if o["status"] in FINISHED and o.get("final_return") is not None and not math.isfinite(float(o["final_return"]))]
        if bad:  # a collapsed seed (NaN return) is a failure, never missing evidence that lets the entry pass
            row.update(verdict="failed", reason="; ".join(f"seed {o['seed']}: {o.get('reason', o['status'])}" for o in bad))
        elif row["band"] is None:
            row.update(verdict="new", reason="no band; run with --update to record one")
        elif (row["band"].get("set") != list(entry.sets) or row["band"].get("preset") != entry.preset
              or row["band"].get("eval_episodes") != entry.eval_episodes):
            row.update(verdict="stale", reason="the band was measured with another config; run with --update")
        else:
            row.update(compare(row["band"]["finals"], finals, entry.floor))
        rows.append(row)
    return rows


def updated_bands(bands: dict[str, Any], suite: str, entries: list[Entry], specs: dict[str, list],
                  outcomes: dict[str, list[dict[str, Any]]], prov: dict[str, Any]) -> dict[str, Any]:
    out = {"format": BANDS_FORMAT, "about": "Reference bands of `sombench regress` (see sombench/analysis/regress.py); rewrite with "
                                            "`sombench regress --suite SUITE --update`.", "suites": dict(bands.get("suites", {}))}
    table = dict(out["suites"].get(suite, {}))
    for entry in entries:
        outs = outcomes[entry.key]
        if any(o["status"] not in FINISHED for o in outs):
            raise UserError(f"{entry.algo} on {entry.env} did not finish every seed; bands not updated")
        finals = [float(o["final_return"]) for o in outs]
        table[entry.key] = band_for(entry, specs[entry.key], finals, prov)
    out["suites"][suite] = dict(sorted(table.items()))
    return out
