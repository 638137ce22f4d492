"""pipeline.Context: the Dask client started in the background while the first stages run, and closed in the
background at the end; the report's timeline."""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager

import pytest

from pipeline import Context, StageResult, run_stages


def slow_client(events: list, delay: float = 0.3, fail: bool = False):
    """A start_client factory: a context manager that takes `delay` seconds to start and records enter/exit."""
    @contextmanager
    def start():
        time.sleep(delay)
        if fail:
            raise RuntimeError("no cluster")
        events.append(("enter", threading.current_thread().name))
        try:
            yield "client"
        finally:
            events.append(("exit", threading.current_thread().name))
    return start


def test_client_started_in_the_background_is_waited_for_once_and_closed():
    events: list = []
    ctx = Context(cfg=None, report=None, start_client=slow_client(events))
    ctx.start_client_soon()
    ctx.start_client_soon()  # a second call starts nothing more
    assert not ctx.client_ready  # the work of the first stages goes on meanwhile
    assert ctx.client == "client" and ctx.client_ready
    assert events == [("enter", "dask-start")]
    ctx.close_soon()
    ctx.close()  # waits for the background close; the client is closed exactly once
    assert events == [("enter", "dask-start"), ("exit", "dask-close")]


def test_a_failed_background_start_raises_where_the_client_is_needed_and_close_is_safe():
    ctx = Context(cfg=None, report=None, start_client=slow_client([], delay=0.05, fail=True))
    ctx.start_client_soon()
    with pytest.raises(RuntimeError, match="no cluster"):
        ctx.client  # noqa: B018
    ctx.close()


def test_closing_while_the_client_still_starts_waits_for_it_then_closes_it():
    events: list = []
    ctx = Context(cfg=None, report=None, start_client=slow_client(events, delay=0.2))
    ctx.start_client_soon()
    ctx.close()  # e.g. Ctrl-C during the first stages: no cluster is left running
    assert [e for e, _ in events] == ["enter", "exit"]


def test_timeline_counts_from_the_process_start():
    from report import RunReport

    class Stage:
        def __init__(self, name):
            self.name = name

        def run(self, ctx):
            time.sleep(0.05)
            return StageResult(1, 1) if self.name == "rows" else None

    ctx = Context(cfg=None, report=RunReport(), started=time.perf_counter() - 1.0)
    run_stages([Stage("first"), Stage("rows")], ctx)
    timeline = ctx.report.sections["timeline"]
    assert list(timeline) == ["first", "rows"]
    assert 1.0 <= timeline["first"] < timeline["rows"] < 2.0
