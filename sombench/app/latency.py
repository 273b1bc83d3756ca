"""`sombench latency`: Table 2, the time of one training update (batch 256) and one acting call
(batch 1) per algorithm (measure/latency.py times them; the CSV goes into the store)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sombench.app import common
from sombench.errors import InvalidValue

FORMATS = ("rich", "md", "csv", "json")


@dataclasses.dataclass
class LatencyRequest:
    algos: list[str] | None = None
    """None: every registered algorithm."""
    env: str | None = None
    """The env whose observation and action shapes are used; None: the paper's HalfCheetah-v4."""
    device: str = "auto"
    repeats: int | None = None
    """Timed repeats per measurement; None: the paper's 30."""
    threads: int | None = None
    results: Path = Path("results")
    compile: bool = False
    breakdown: bool = False
    """Also time each algorithm's update part by part (algorithms that declare their parts)."""
    paper: bool = False
    reference: str | None = None
    """The algorithm the ratio columns divide by; None: measure.latency's default, the paper's (SOM)."""
    fmt: str = "rich"
    act_batches: list[int] = dataclasses.field(default_factory=list)
    """Also time acting on N observations at once for each N (`--act-batch`): the acting cost per env step of N
    vector envs."""


@dataclasses.dataclass
class LatencyResult:
    report: Any
    """measure.latency.LatencyReport"""
    comparison: Any | None
    """With `paper`: measure.latency.Comparison beside the paper's Table 2."""
    breakdowns: dict[str, list]
    """algorithm -> its update's phases (measure.latency.PhaseTiming), with `breakdown`."""
    csv_path: Path
    env: str


def latency(req: LatencyRequest, on_start: Callable[[str], None] | None = None,
            warn: Callable[[str], None] | None = None) -> LatencyResult:
    """Time every selected algorithm, write the CSV into RESULTS/latency/ and compare with the paper's."""
    from sombench.envs import describe_env
    from sombench.measure import latency as lat
    from sombench.runs.store import Store

    on_start = on_start or (lambda name: None)
    warn = warn or (lambda message: None)
    if req.fmt not in FORMATS:
        raise InvalidValue("format", f"{req.fmt!r} is unknown; use {', '.join(FORMATS)}")
    env = req.env or lat.DEFAULT_ENV
    repeats = req.repeats if req.repeats is not None else lat.DEFAULT_REPEATS
    common.check_positive("repeats", repeats)
    common.check_positive("threads", req.threads)
    for n in req.act_batches:
        common.check_positive("act-batch", n)
    if req.reference is not None:
        common.algorithm_class(req.reference)
    names = common.split_names(req.algos)
    classes = {name: common.algorithm_class(name) for name in dict.fromkeys(names)} if names else None
    info = describe_env(env)
    import torch

    device = torch.device(common.resolve_device(req.device))
    st = Store(req.results)
    st.check()
    if req.threads:
        torch.set_num_threads(req.threads)
    selected = lat.select_algorithms(classes)
    if req.breakdown and req.fmt == "csv":
        raise InvalidValue("breakdown", "prints tables: use the rich, md or json format")
    report = lat.measure_all(selected, info, device, repeats, on_start=on_start, compiled=req.compile, warn=warn,
                             act_batches=tuple(dict.fromkeys(req.act_batches)))
    breakdowns: dict[str, list] = {}
    if req.breakdown:
        for name, cls in selected.items():
            on_start(f"{name}'s update part by part")
            phases = lat.measure_breakdown(cls, info, device, repeats)
            if phases is None:
                if names:  # asked for by name; with every algorithm, those without a breakdown are skipped quietly
                    warn(f"breakdown: {name} does not declare the parts of its update (algorithms/common/capabilities.py Profiled)")
                continue
            breakdowns[name] = phases
    st.init()
    path = lat.write_csv(req.results, report)
    comparison = None
    if req.paper:
        comparison = lat.compare(report, reference=req.reference or lat.DEFAULT_REFERENCE)
    return LatencyResult(report, comparison, breakdowns, path, info.env_id)
