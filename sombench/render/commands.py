"""What each command prints, built from the data its use case returns (sombench/app/): rich tables and
renderables for the terminal, plain strings for md, latex, csv and json. Nothing here reads the store
or trains; the CLI prints what these return."""

from __future__ import annotations

import json
from typing import Any

from rich.table import Table

from sombench.render.progress import compact, fmt_return

Printable = Any
"""A rich renderable (printed with console.print) or a str (printed as is, for pipes and files)."""


# -- run ------------------------------------------------------------------------------------------
def run_summary(summary) -> Table:
    """`sombench run`'s closing table: per seed status, steps and final return, then mean ± 95% CI."""
    table = Table(title=f"{summary.label} on {summary.env}: final evaluation return")
    for col in ("seed", "status", "steps", "final return"):
        table.add_column(col, justify="right" if col != "status" else "left")
    for row in summary.rows:
        table.add_row(str(row["seed"]), row["status"] + (f": {row['reason']}" if row.get("reason") else ""),
                      str(row.get("steps") or "-"), fmt_return(row.get("final_return"), missing_nan=False))
    if summary.finals:
        ci = f" ± {summary.ci95:.1f}" if summary.ci95 == summary.ci95 else ""
        table.add_section()
        left_out = len([r for r in summary.rows if r.get("final_return") is not None]) - len(summary.finals)
        note = f" ({left_out} non-finite left out)" if left_out > 0 else ""
        table.add_row("all", f"{len(summary.finals)} seed(s), mean ± 95% CI{note}", "", f"{summary.mean:.1f}{ci}")
    return table


RUN_FAILED = ("{n} seed(s) failed: each run folder's state.json has the reason (error.log the traceback); fix the cause, "
              "then rerun the same command: finished seeds are skipped, the others resume from their last checkpoint")


# -- status ---------------------------------------------------------------------------------------
def status(rows: list[dict[str, Any]], results, fmt: str) -> Printable:
    if fmt == "json":
        return json.dumps(rows, indent=2)
    if not rows:
        return f"no runs in {results}"
    table = Table(title=f"runs in {results}")
    for col in ("env", "algo", "seed", "steps", "state", "last return"):
        table.add_column(col, overflow="fold")
    for r in rows:
        state = r["state"] + (f" ({r['reason']})" if r["reason"] and r["state"] != "done" else "")
        table.add_row(r["env"], r["algo"], str(r["seed"]), f"{compact(r['steps_done'] or 0)}/{compact(r['steps_total'] or 0)}",
                      state, fmt_return(r["last_return"]))
    return table


# -- table ----------------------------------------------------------------------------------------
PAPER_TITLE = "SOM paper, Table 1 (same cells)"
NO_PAPER_CELLS = ("The paper's Table 1 has no cell in common with this table (it covers Ant, HalfCheetah, Hopper, "
                  "Humanoid and Walker2d v4).")


def table(result, fmt: str) -> list[Printable]:
    """Table 1 in `fmt`, the paper's cells after it (with --paper) and the rliable statistics (with --stats)."""
    from sombench.render import tables

    out: list[Printable] = []
    if result.paper_asked and result.paper is None:
        out.append(NO_PAPER_CELLS)
    paper, rl = result.paper, result.rliable
    if fmt == "json":
        payload = tables.records(result.table)
        if paper is not None:
            payload["paper"] = tables.records(paper)
        if rl is not None:
            payload["rliable"] = rl
        out.append(tables.to_json(payload))
    elif fmt == "csv":
        text = tables.to_csv(result.table)
        if paper is not None:
            text += tables.to_csv(paper, source="paper").split("\n", 1)[1]
        out.append(text.removesuffix("\n"))
    elif fmt == "md":
        out.append(tables.to_markdown(result.table, result.title))
        if paper is not None:
            out.append(tables.to_markdown(paper, PAPER_TITLE))
        if rl is not None:
            out.append(tables.rliable_markdown(rl))
    elif fmt == "latex":
        out.append(tables.to_latex(result.table, result.title))
        if paper is not None:
            out.append(tables.to_latex(paper, PAPER_TITLE))
    else:
        out.append(tables.to_rich(result.table, result.title))
        if paper is not None:
            out.append(tables.to_rich(paper, PAPER_TITLE))
        if rl is not None:
            out.append(tables.rliable_rich(rl))
    return out


# -- bandit ---------------------------------------------------------------------------------------
def bandit(payload: dict[str, Any], labels: dict[str, str]) -> list[Printable]:
    """Per group (clean, perturbed): the mode-count table, then each seed's files."""
    from sombench.render.bandit import critic_table, modes_table

    out: list[Printable] = []
    for name in ("clean", "perturbed"):
        if name not in payload:
            continue
        group = payload[name]
        out.append(modes_table(f"{labels[name]} on {group['env']}: generator mode counts", group["seeds"], group["aggregate"]))
        if all(r.get("critic") for r in group["seeds"]):
            out.append(critic_table(f"{labels[name]} on {group['env']}: the trained critic", group["seeds"]))
        out += [f"seed {r['seed']}: " + ", ".join(r["files"]) for r in group["seeds"]]
    return out


# -- sweep and regress ----------------------------------------------------------------------------
def outcome_counts(outcomes: list[dict[str, Any]]) -> str:
    from sombench.runs.outcome import Outcome

    counts = {k: sum(o["status"] == k for o in outcomes) for k in Outcome}
    return ", ".join(f"{n} {k}" for k, n in counts.items() if n)


SWEEP_RERUN = ("fix the cause (or wait for the locked runs to end), then rerun the same command: finished runs are "
               "skipped, the others resume from their last checkpoint")


# -- listings -------------------------------------------------------------------------------------
def algorithms(infos) -> Table:
    table = Table(title="algorithms", caption="`sombench algos NAME` lists an algorithm's config fields (the keys of --set).")
    for col in ("name", "description", "presets"):
        table.add_column(col)
    for info in infos:
        table.add_row(info.name, info.description, ", ".join(info.presets) or "-")
    return table


def _value(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value))
    if value is None or isinstance(value, bool):
        return str(value).lower()
    return f"{value:g}" if isinstance(value, float) else str(value)


def config_fields(name: str, preset: str | None, fields) -> Table:
    """One algorithm's config: every field with its type, default (after the preset), domain and docstring."""
    caption = ("Set any field with --set KEY=VALUE (widths as 64,64; none for an optional value)."
               + (f" * = changed by preset {preset}." if preset else ""))
    table = Table(title=f"{name} config" + (f" with preset {preset}" if preset else ""), caption=caption)
    table.add_column("field", no_wrap=True)
    for col in ("type", "default", "domain", "what"):
        table.add_column(col, overflow="fold")
    for f in fields:
        table.add_row(f.name, f.type, _value(f.default) + (" *" if f.preset else ""), f.domain, f.doc)
    return table


def envs(tasks, bandits: dict[str, str]) -> list[Printable]:
    table = Table(title="paper tasks (SOM paper, Section 5.1)", caption="Any other Gymnasium id with a Box action space runs too, with --steps.")
    for col in ("env", "budget (steps)", "longer budgets", "description"):
        table.add_column(col)
    for task in tasks:
        longer = ", ".join(f"{name} {steps:,}" for name, steps in task.longer)
        table.add_row(task.env_id, f"{task.budget:,}", longer or "-", task.description)
    second = Table(title="bandits (SOM paper, Section 5.2 and Appendix F)",
                   caption="One-step episodes, box [-2.5, 2.5]^2; perturbed: e.g. sombench/EightGaussians-noise0.2-v0, "
                           "sombench/TwoMoons-bump0.5x0.3-v0 (C x SIGMA). `sombench bandit` trains and draws them.")
    for col in ("env", "description"):
        second.add_column(col)
    for env_id, text in bandits.items():
        second.add_row(env_id, text)
    return [table, second]


# -- latency --------------------------------------------------------------------------------------
def latency(result, fmt: str) -> list[Printable]:
    """Table 2 in `fmt`: our times (eager, and compiled with --compile), acting, each --breakdown's phases,
    the paper's Table 2 with ratio columns (--paper); rich output ends with the CSV's path."""
    from sombench.render import latency as lat

    extra = [lat.breakdown_grid(name, result.env, phases) for name, phases in result.breakdowns.items()]
    if fmt == "json":
        return [lat.to_json(result.report, result.comparison, result.csv_path, result.breakdowns)]
    if fmt == "csv":
        return [lat.to_csv(result.report, result.comparison).removesuffix("\n")]
    if fmt == "md":
        return [lat.to_markdown(result.report, result.comparison, extra)]
    return [lat.to_rich(result.report, result.comparison, extra), f"wrote {result.csv_path}"]


# -- evaluate -------------------------------------------------------------------------------------
def evaluation(result) -> Table:
    """`sombench evaluate`'s table: one row per episode (return, length), then mean ± 95% CI and the videos."""
    r = result.replay
    mode = "deterministic" if result.deterministic else "stochastic"
    table = Table(title=f"{r.algo} on {r.env}, checkpoint at step {r.step:,} (run {r.state}), {mode}, seed {r.seed}")
    for col in ("episode", "return", "length", "video"):
        table.add_column(col, justify="left" if col == "video" else "right")
    videos = {i: v for i, v in enumerate(r.videos)}
    for i, (ret, length) in enumerate(zip(r.returns, r.lengths)):
        table.add_row(str(i), fmt_return(ret, missing_nan=False), str(length), str(videos[i]) if i in videos else "")
    table.add_section()
    ci = f" ± {result.ci95:.1f}" if result.ci95 == result.ci95 else ""
    table.add_row("all", f"{result.mean:.1f}{ci}", "", f"mean ± 95% CI over {len(r.returns)} episode(s)")
    return table
