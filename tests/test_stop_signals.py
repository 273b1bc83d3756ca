"""`stop_on_signals` (sombench/train/executors.py) in this process, without training: which signals it takes
over, which it leaves alone, and that it restores the previous handlers (tests/test_stop.py runs the same
paths end to end, in subprocesses)."""

from __future__ import annotations

import os
import signal

import pytest

from sombench.train.executors import Stopped, stop_on_signals


@pytest.fixture
def restore_handlers():
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_sighup_inherited_ignored_stays_ignored_as_under_nohup(restore_handlers):
    """A command started under `nohup` must survive a hangup: SIGHUP ignored on entry stays ignored inside."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    with stop_on_signals():
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
        os.kill(os.getpid(), signal.SIGHUP)  # ignored: nothing is raised
    assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM])
def test_sighup_and_sigterm_at_their_default_raise_stopped_and_the_handler_is_restored(restore_handlers, sig):
    signal.signal(sig, signal.SIG_DFL)
    with pytest.raises(Stopped):
        with stop_on_signals():
            os.kill(os.getpid(), sig)
    assert signal.getsignal(sig) == signal.SIG_DFL


def test_sigint_is_handled_even_when_inherited_ignored(restore_handlers):
    """A shell starts background jobs with SIGINT ignored; a run must still stop on Ctrl-C (and save)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with pytest.raises(Stopped):
        with stop_on_signals():
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
