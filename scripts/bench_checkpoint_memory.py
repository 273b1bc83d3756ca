#!/usr/bin/env python3
"""Peak extra resident memory while a checkpoint is written for a Humanoid-v4-shaped replay buffer.

Builds SAC as sombench's runner does, fills its replay buffer completely with random float32 rows
(obs 376, action 17, capacity 1,000,000), then measures RSS before the save and the peak RSS (VmHWM,
reset via /proc/self/clear_refs) during exactly what `Trainer.checkpoint` does to write checkpoint.pt.

Usage: python scripts/bench_checkpoint_memory.py [OUTFILE]      (OUTFILE default /tmp/ckpt_mem_checkpoint.pt; deleted after)
Measured before and after issue 23 (docs/benchmarks.md "Layering").
"""
import dataclasses
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

import algorithms
from sombench.runs import checkpoint
from sombench.runs.spec import json_ready, resolve_config

OBS_DIM, ACT_DIM, CAPACITY = 376, 17, 1_000_000
GB = 1e9


def status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def reset_hwm() -> None:
    Path("/proc/self/clear_refs").write_text("5")


# ======================================================================================
# THE SAVE UNDER MEASUREMENT: exactly what sombench.train.trainer.Trainer.checkpoint writes
# (at 8d6ae62: store.atomic_torch_save(path, {..., "algo": algo.state_dict(), ...})).
# Replace this one function with the new API after the refactor.
# ======================================================================================
def save_checkpoint(path: Path, algo, identity: dict, action_rng: np.random.Generator,
                    env_rng: np.random.Generator) -> None:
    checkpoint.save(path, {  # the new API: what Trainer.checkpoint now writes (format added by save)
        "identity": identity,
        "step": CAPACITY,
        "episodes": 1000,
        "wall_s": 1234.5,
        "algo": algo.state_dict(),
        "metrics": {},  # Trainer passes self.window.state_dict(): a few floats
        "rng": {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "numpy": np.random.get_state(),
            "python": random.getstate(),
            "actions": action_rng.bit_generator.state,
            "env": env_rng.bit_generator.state,
        },
    })
# ======================================================================================


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/ckpt_mem_checkpoint.pt")
    torch.set_num_threads(1)
    config = resolve_config("sac", None, [])
    algo = algorithms.get("sac")(OBS_DIM, ACT_DIM, config, torch.device("cpu"))
    buf = algo.buffer
    assert buf.capacity == CAPACITY, buf.capacity
    gen = torch.Generator().manual_seed(0)
    for name, tensor in buf.storage.items():  # fill in place: no temporary copies
        tensor.uniform_(-1.0, 1.0, generator=gen)
    filled = int(CAPACITY * float(os.environ.get("FILL", "1")))
    buf.size, buf.ptr = filled, filled % CAPACITY
    buffer_bytes = sum(t.numel() * t.element_size() for t in buf.storage.values())
    identity = {"algo": "sac", "env": "Humanoid-v4", "seed": 0, "total_steps": CAPACITY,
                "algo_config": json_ready(dataclasses.asdict(config))}
    action_rng, env_rng = np.random.default_rng(0), np.random.default_rng(1)

    rss_before = status_kb("VmRSS") * 1024
    reset_hwm()
    t0 = time.perf_counter()
    save_checkpoint(out, algo, identity, action_rng, env_rng)
    dt = time.perf_counter() - t0
    peak = status_kb("VmHWM") * 1024
    rss_after = status_kb("VmRSS") * 1024
    size = out.stat().st_size
    out.unlink()

    print(f"replay buffer: capacity {CAPACITY:,}, obs {OBS_DIM}, act {ACT_DIM}, "
          f"fields {', '.join(f'{k}{tuple(v.shape)}' for k, v in buf.storage.items())}")
    print(f"buffer size            {buffer_bytes / GB:.3f} GB (filled rows: {buf.size:,})")
    print(f"checkpoint file size   {size / GB:.3f} GB")
    print(f"RSS before save        {rss_before / GB:.3f} GB")
    print(f"peak RSS during save   {peak / GB:.3f} GB")
    print(f"peak extra             {(peak - rss_before) / GB:.3f} GB = {(peak - rss_before) / 1e6:.1f} MB  ({(peak - rss_before) / buffer_bytes:.4f} x buffer)")
    print(f"RSS after save         {rss_after / GB:.3f} GB")
    print(f"save wall time         {dt:.1f} s")


if __name__ == "__main__":
    main()
