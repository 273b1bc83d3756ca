"""The words a run's state and a command's outcome are spelled with, as `str` enums: a member equals its
string (`RunState.DONE == "done"`), serialises to it with `json.dumps`, and formats as it in f-strings,
so state.json, outcome dicts and every existing comparison with a bare string keep working.

No torch, no algorithm import: the analysis layer reads these too.
"""

from __future__ import annotations

import enum


class _Word(str, enum.Enum):
    """A str enum that prints as its value (`f"{RunState.DONE}"` is `done`, not `RunState.DONE`)."""

    def __str__(self) -> str:
        return self.value

    __format__ = str.__format__


class RunState(_Word):
    """A run folder's state, as state.json records it (the first four) or the store reports it."""

    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    """state.json says running, but no live process holds the run's lock (the store's reading)."""
    UNKNOWN = "unknown"
    """state.json missing or unreadable."""
    DAMAGED = "damaged"
    """A run file exists but cannot be read as sombench wrote it (RunRecord.damage says why)."""


class Outcome(_Word):
    """What a command did with one run it was asked to make."""

    DONE = "done"
    """Trained to its budget in this command."""
    SKIPPED = "skipped"
    """Already done in the store; nothing was run."""
    FAILED = "failed"
    REFUSED = "refused"
    """Not started: its stored settings, files or checkpoint do not allow it (the reason says which)."""
    LOCKED = "locked"
    """Not started: a live process holds the run's lock."""


FINISHED = frozenset({Outcome.DONE, Outcome.SKIPPED})
"""Outcomes whose run reached its budget (its final return is in the store)."""
NEEDS_USER = frozenset({Outcome.FAILED, Outcome.REFUSED, Outcome.LOCKED})
"""Outcomes the user must act on (fix the cause, or wait for the lock's holder) before a rerun finishes the work."""
