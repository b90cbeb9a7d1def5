"""Stops: a scheduler's signals (SIGTERM at a time limit or preemption, SIGUSR2 as its warning)
turned into Ctrl-C's unwinding, for `train` and a study's driver alike, and the steps a stop must
not cut in two (`stop_deferred`). Light: `train` imports it before torch."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

DEFERRED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR2)


class Stopped(KeyboardInterrupt):
    """A scheduler's stop signal (SIGTERM, SIGUSR2), raised where the driver was: it unwinds the
    study like Ctrl-C (workers stopped, their runs queued again)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR2)  # time limit, preemption, `scancel --signal`
# stops received and not yet seen unwinding the driver: the exception a handler raises is lost when
# it lands in a weakref callback or a __del__ (Python prints "Exception ignored" and goes on: a
# Ctrl-C inside SQLAlchemy's `_collection_gced` let a study train to its end); `events` raises it again
STOPS: list[int] = []


def stop_exception(signum: int) -> KeyboardInterrupt:
    return KeyboardInterrupt() if signum == signal.SIGINT else Stopped(signum)


def raise_lost_stop() -> None:
    """Raise a stop whose first exception was swallowed (see STOPS)."""
    if STOPS:
        signum = STOPS[0]
        STOPS.clear()
        raise stop_exception(signum)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM and SIGUSR2 (a scheduler's stop or warning before the time limit, `kill`) stop the
    study like Ctrl-C: workers stopped, running runs queued again, no traceback. Ctrl-C, and every
    stop, is also remembered until the study has unwound (`raise_lost_stop`); one that Python
    swallowed is not printed as "Exception ignored" with its traceback."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if signum != signal.SIGINT:
            for s in STOP_SIGNALS:  # one stop: a second signal must not interrupt the requeueing
                signal.signal(s, signal.SIG_IGN)
        STOPS.append(signum)
        raise stop_exception(signum)

    def unraisable(info: Any) -> None:
        if not (isinstance(info.exc_value, KeyboardInterrupt) and STOPS):  # a lost stop: raised again later
            hook_before(info)

    own_ctrl_c = signal.getsignal(signal.SIGINT) is signal.default_int_handler  # not a notebook kernel's
    signals = (signal.SIGINT, *STOP_SIGNALS) if own_ctrl_c else STOP_SIGNALS
    previous = [signal.signal(s, handler) for s in signals]
    hook_before, sys.unraisablehook = sys.unraisablehook, unraisable
    STOPS.clear()
    try:
        yield
    except KeyboardInterrupt as stop:
        if STOPS and not isinstance(stop, Stopped) and STOPS[0] != signal.SIGINT:
            raise_lost_stop()  # the stop as it came: Ray's wait turned SIGTERM into a bare Ctrl-C
        raise
    finally:
        STOPS.clear()
        sys.unraisablehook = hook_before
        for s, handler_before in zip(signals, previous, strict=True):
            signal.signal(s, handler_before)


@contextlib.contextmanager
def stop_deferred() -> Any:
    """Ctrl-C, SIGTERM and SIGUSR2 wait for the end of the block, then act as they would have.
    Taking a run and noting who trains it (or recording how it ended) is one step: a stop between
    the two would leave the run RUNNING in the database with no one to put it back in the queue."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {s: signal.getsignal(s) for s in DEFERRED_SIGNALS}
    deferred = [s for s, h in previous.items() if h is not None]  # None: set outside Python, left alone
    for s in deferred:
        signal.signal(s, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        for s in deferred:
            signal.signal(s, previous[s])
        if caught:
            signal.raise_signal(caught[0])  # the handler in place now (Ctrl-C's, the study's stop)


PARENT = "VISIONSTUDY_PARENT_PID"  # set for a process that must end with the one that started it
PR_SET_PDEATHSIG = 1


def end_with_parent() -> None:
    """End this process when its parent ends, if the parent asked so ($VISIONSTUDY_PARENT_PID, its
    PID): a data-parallel run's `train` under a study worker (and the ranks that `train` starts), a
    Ray task's `study work`. A killed worker's `train` otherwise trained on, holding the run folder's
    lock, and the worker that took the run next failed on it; a killed Ray task's worker trained on
    beside the task Ray started again. On Linux the kernel kills it at once; elsewhere a thread looks."""
    parent = os.environ.get(PARENT)
    if not parent:
        return
    os.environ[PARENT] = str(os.getpid())  # the ranks started from here end with this process in turn
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != int(parent):  # gone before the kernel was told
        os._exit(1)
    if not sys.platform.startswith("linux"):
        threading.Thread(target=exit_when_orphaned, args=(int(parent),), daemon=True).start()


def exit_when_orphaned(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.2)
    os._exit(1)
