"""One spare local process, for work that reads only files: the audit of the written dataset.

The audit needs nothing of the driver's memory or of the cluster, so in a process of its own it runs beside the
leak check (in the driver) and the card's pictures (on a Dask worker), and the cluster can shut down meanwhile (a
Dask worker could not run it without keeping the cluster up until it is done). The process is started before it
is needed, while a core is idle, and imports what the work will use then.
"""
from __future__ import annotations

import importlib
import signal
from contextlib import contextmanager
from typing import Callable, Iterator


def _ready(modules: tuple[str, ...]) -> None:
    # a Ctrl-C reaches the whole process group: the driver handles it and terminates this process
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name in modules:
        importlib.import_module(name)


class SpareProcess:
    """A spawned process that has imported `modules`; `run` calls a function in it."""

    def __init__(self, modules: tuple[str, ...] = ()):
        import multiprocessing

        self._pool = multiprocessing.get_context("spawn").Pool(1, initializer=_ready, initargs=(modules,))

    def run(self, fn: Callable, *args, **kwargs):
        """`fn(*args, **kwargs)` in the spare process: its result, or its exception raised here."""
        return self._pool.apply_async(fn, args, kwargs).get()

    def terminate(self) -> None:
        """Stop the process at once, whatever it is doing."""
        self._pool.terminate()


@contextmanager
def spare_process(modules: tuple[str, ...] = ()) -> Iterator[SpareProcess]:
    """A SpareProcess, terminated on the way out (its work is done or no longer wanted by then)."""
    spare = SpareProcess(modules)
    try:
        yield spare
    finally:
        spare.terminate()
