"""`torch.compile` of an algorithm's hot paths (its `compiled_methods`), with a fallback to eager.

Each algorithm names the methods that hold its tensor work (`update_step`, `act_step`, ...): they take
tensors and Python flags, never read or write a Python counter (the update counter and the delays it
drives are decided in the uncompiled `update` and passed in as bools, so each schedule phase compiles
once instead of recompiling on every new counter value) and never sync with the host. `compile_methods`
replaces each on the instance with a `CompiledMethod`; the class, its checkpoints (`state_dict` keys)
and its eager behaviour are unchanged.

Choices, and why:
- The mode per device: "reduce-overhead" on CUDA (CUDA graphs, what makes small-network RL fast on a
  GPU: LeanRL), inductor's default mode on CPU (CUDA graphs do not exist there).
- `torch._inductor.config.fallback_random = True`: random draws inside compiled code use eager's
  generator, so a compiled run gives the eager run's numbers within float tolerance and the same seed
  gives the same run (the harness's reproducibility promise); inductor's own RNG would not.
- A device without compile support (no C++ compiler for CPU inductor, no Triton for CUDA), or a method
  whose compilation fails, runs eagerly after one warning line; `torch._dynamo.config.suppress_errors`
  makes a failing frame fall back inside torch itself, so a failure in the middle of an update never
  repeats the half that already ran.
"""

from __future__ import annotations

import functools
import logging
import shutil
import warnings
from collections.abc import Callable
from typing import Any

import torch

log = logging.getLogger("sombench.compile")


def compile_mode(device: torch.device) -> str | None:
    """torch.compile's mode for `device`: CUDA graphs on CUDA, inductor's default elsewhere."""
    return "reduce-overhead" if torch.device(device).type == "cuda" else None


def compile_support(device: torch.device) -> str | None:
    """None if torch.compile can build code for `device` here, else the reason it cannot."""
    kind = torch.device(device).type
    if kind == "cpu":
        if not any(shutil.which(cc) for cc in ("g++", "c++", "clang++", "cl")):
            return "no C++ compiler on PATH (CPU inductor needs one)"
        return None
    if kind == "cuda":
        try:
            from torch.utils._triton import has_triton
        except ImportError:  # pragma: no cover - very old torch
            return "this torch has no Triton support"
        return None if has_triton() else "Triton is not installed (CUDA inductor needs it)"
    return f"torch.compile is not supported on {kind} devices here"


def warn_once(message: str) -> None:
    warnings.warn(message, RuntimeWarning, stacklevel=3)


def _clone_outputs(value: Any) -> Any:
    """Copies of a CUDA-graph run's output tensors: the next replay overwrites the graph's own buffers,
    and the harness keeps metrics across updates."""
    return torch.utils._pytree.tree_map(lambda x: x.clone() if isinstance(x, torch.Tensor) else x, value)


class CompiledMethod:
    """A bound method compiled with torch.compile; calls the eager method if compilation fails."""

    def __init__(self, method: Callable[..., Any], device: torch.device, warn: Callable[[str], None]):
        self.eager = method
        self.name = getattr(method, "__qualname__", repr(method))
        self.cuda_graphs = compile_mode(device) == "reduce-overhead"
        # dynamic=False: each shape (acting at N and at eval_particles, the update's batch) gets its own static
        # graph; there are a handful, and static shapes are both faster and free of symbolic-shape corner cases
        self.compiled = torch.compile(method, mode=compile_mode(device), dynamic=False)
        self.warn = warn
        self.failed: str | None = None
        functools.update_wrapper(self, method)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.failed is not None:
            return self.eager(*args, **kwargs)
        try:
            if self.cuda_graphs:
                torch.compiler.cudagraph_mark_step_begin()
                return _clone_outputs(self.compiled(*args, **kwargs))
            return self.compiled(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - any compiler failure must degrade to eager, not crash a run
            # suppress_errors makes dynamo/inductor failures fall back per frame inside torch; what still
            # reaches here failed before any compiled frame ran (e.g. in the backend's first build).
            self.failed = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            self.warn(f"torch.compile of {self.name} failed ({self.failed}); running it eagerly")
            return self.eager(*args, **kwargs)


class _OneLineFallback(logging.Filter):
    """Turns dynamo's "WON'T CONVERT ... <traceback>" warning (a frame that failed to compile and runs
    eagerly, under suppress_errors) into one warning line through `warn`."""

    def __init__(self) -> None:
        super().__init__()
        self.warn: Callable[[str], None] = warn_once

    def filter(self, record: logging.LogRecord) -> bool:
        text = str(record.msg)
        if "WON'T CONVERT" not in text:
            return True
        exc = record.exc_info[1] if record.exc_info else None
        inner = getattr(exc, "inner_exception", None) or getattr(exc, "__cause__", None) or exc
        reason = f"{type(inner).__name__}: {str(inner).splitlines()[0]}" if inner is not None and str(inner) else "unknown"
        where = text.split("WON'T CONVERT", 1)[1].split("\n", 1)[0].strip()
        self.warn(f"torch.compile failed for {where} ({reason}); that part runs eagerly")
        return False


_FALLBACK_FILTER = _OneLineFallback()


class _DropProfilerNotice(logging.Filter):
    """Drops dynamo's "Profiler record function ... will be ignored": the optimizers' profiler annotations
    are left out of compiled code, which changes nothing a user can act on."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (str(record.msg).startswith("Profiler") and "will be ignored" in str(record.msg))


_PROFILER_FILTER = _DropProfilerNotice()
_NOTICE_LOGGERS = ("torch._dynamo.variables.ctx_manager", "torch._dynamo.variables.torch")


def configure_compiler(warn: Callable[[str], None] = warn_once) -> None:
    """The process-wide compiler settings the module docstring explains."""
    import torch._dynamo
    import torch._inductor.config

    _FALLBACK_FILTER.warn = warn
    frame_log = logging.getLogger("torch._dynamo.convert_frame")
    if _FALLBACK_FILTER not in frame_log.filters:
        frame_log.addFilter(_FALLBACK_FILTER)
    for name in _NOTICE_LOGGERS:
        notice_log = logging.getLogger(name)
        if _PROFILER_FILTER not in notice_log.filters:
            notice_log.addFilter(_PROFILER_FILTER)

    torch._inductor.config.fallback_random = True
    torch._dynamo.config.suppress_errors = True
    # one graph per schedule phase (flags) and per acting mode; a few spare before torch gives up on a frame
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 16)


def compile_methods(obj: Any, names: tuple[str, ...], device: torch.device,
                    warn: Callable[[str], None] = warn_once) -> tuple[list[str], str | None]:
    """Replace each method `names` of `obj` by its compiled version; returns (the names compiled, None)
    or ([], the reason) when the device cannot compile (then `warn` is called once with that reason)."""
    reason = compile_support(device)
    if reason is not None:
        warn(f"--compile: {reason}; running eagerly")
        return [], reason
    configure_compiler(warn)
    for name in names:
        setattr(obj, name, CompiledMethod(getattr(obj, name), device, warn))
    return list(names), None
