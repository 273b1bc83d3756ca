"""Checks made before a run is started or resumed, so bad input is refused before anything is written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sombench.errors import UserError
from sombench.runs import checkpoint
from sombench.runs.outcome import Outcome, RunState
from sombench.runs.spec import RunSpec, json_ready, upgrade_identity
from sombench.runs.store import Store


def differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """`field old -> new` for every leaf where two nested dicts differ, sorted by key path."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new)):
            out += differences(old.get(key), new.get(key), f"{prefix}{key}.")
        return out
    return [] if old == new else [f"{prefix[:-1]} {old!r} -> {new!r}"]


def check_existing_run(spec: RunSpec, results: Path) -> None:
    """UserError for a rerun whose settings differ from the stored run, a damaged run, or a seed a live process holds."""
    st = Store(results)
    stored = st.stored_identity(spec.key)
    run = st.run_dir(spec.key)
    if stored is not None:
        old, new = upgrade_identity(stored, spec), json_ready(spec.identity())
        if old.get("algo_revision") != new.get("algo_revision"):
            raise UserError(f"{run} was run by revision {old.get('algo_revision')} of {spec.algo}, whose defaults have since "
                            f"changed (now revision {new.get('algo_revision')}); use another results folder or --tag, or delete that run")
        diff = differences(old, new)
        if diff:
            raise UserError(f"{run} was run with other settings ({'; '.join(diff[:3])}); name this config with a tag, "
                            "use another results folder or delete that run")
    st.check_resumable(spec.key)
    files = st.files(spec.key)
    checkpoint.verify(spec, files.checkpoint, files.config)


def preflight(specs: list[RunSpec], results: Path, *, report_locked: bool) -> dict[int, dict[str, Any]]:
    """Check every spec against the store before anything is written; return the outcomes already known.

    A run whose state says `done` is known as `skipped`. A run a live process holds is known as `locked`
    when `report_locked` (a sweep reports it and goes on), else refused with UserError (`sombench run`).
    Every other existing run must be resumable by this spec (`check_existing_run`), else UserError."""
    from sombench.runs import store

    st = Store(results)
    known: dict[int, dict[str, Any]] = {}
    for i, spec in enumerate(specs):
        run = st.run_dir(spec.key)
        state = store.read_state(run) or {}
        holder = store.lock_holder(run) if (report_locked and run.exists()) else None
        if holder is not None:
            known[i] = {"seed": spec.seed, "status": Outcome.LOCKED, "steps": state.get("env_step"),
                        "reason": f"held by pid {holder.get('pid')} on {holder.get('host')}"}
            continue
        check_existing_run(spec, results)
        if state.get("state") == RunState.DONE:
            known[i] = {"seed": spec.seed, "status": Outcome.SKIPPED, "steps": state.get("env_step"), "final_return": state.get("last_return")}
    return known
