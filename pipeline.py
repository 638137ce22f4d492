"""The stage runner: one loop that runs the flow's stages in order, times them, and checks their accounting.

A stage is a small object with a `name`, `describe(ctx) -> str` (what `--dry-run` prints) and
`run(ctx) -> StageResult | None` (None for stages that move no rows: download, leak check, audit, card).
Every row stage reports rows in, rows out and drops by named reason; the runner records them in the report,
where `rows in = rows out + dropped` is checked, and checks that a stage starts with the rows the previous
one ended with (`ctx.rows`), so no row is ever lost without a reason.

Fault tests inject through one hook (`set_fault_hook`): it is called at the start of every stage and at the
checkpoints stages declare (the writer calls it per partition), in the driver process.
"""
from __future__ import annotations

import concurrent.futures
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol


FaultHook = Callable[[str, str, int], None]
_fault_hook: FaultHook | None = None


def set_fault_hook(hook: FaultHook | None) -> None:
    """Install `hook(stage, event, index)`, called at each stage start ("start", 0) and at stage checkpoints."""
    global _fault_hook
    _fault_hook = hook


def checkpoint(stage: str, event: str, index: int = 0) -> None:
    """A point where a fault test may interrupt the run (no-op unless a hook is installed)."""
    if _fault_hook is not None:
        _fault_hook(stage, event, index)


@dataclass
class StageResult:
    """A row stage's accounting. `adds` marks a stage that adds rows to the dataset (synthesize) rather than
    passing the previous stage's rows on."""

    rows_in: int
    rows_out: int
    dropped: dict[str, int] = field(default_factory=dict)
    adds: bool = False


class AccountingError(AssertionError):
    """A stage lost or invented rows without a reason (a bug, never a user error)."""


def in_thread(name: str, fn: Callable, *args, daemon: bool = True, **kwargs) -> concurrent.futures.Future:
    """`fn(*args, **kwargs)` in a thread called `name`: a Future of its result, or of its exception (raised again
    where the Future is waited for). `daemon=False` for work in native code that must finish before the
    interpreter exits (an interrupted run exits while it may still be going)."""
    import threading

    done: concurrent.futures.Future = concurrent.futures.Future()

    def call() -> None:
        try:
            done.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to whoever waits for the result
            done.set_exception(exc)

    threading.Thread(target=call, name=name, daemon=daemon).start()
    return done


@dataclass
class Context:
    """What the stages share: the config, the report, the Dask client (started on first use) and the data."""

    cfg: Any  # config.RunConfig
    report: Any = field(default_factory=lambda: _new_report())  # report.RunReport
    start_client: Callable[[], Any] | None = None  # a context manager factory for the Dask client
    rows: int | None = None  # rows in the dataset after the last row stage
    started: float = field(default_factory=time.perf_counter)  # perf_counter when the process began its work
    data: dict[str, Any] = field(default_factory=dict)  # stage outputs by name (records, source, families, ...)
    _resources: ExitStack = field(default_factory=ExitStack)  # the cluster's: closed by close_soon or close
    _held: ExitStack = field(default_factory=ExitStack)  # this machine's processes (`hold`): closed by close
    _client: Any = None
    _starting: Any = None  # a concurrent.futures.Future of the client, while start_client_soon starts it
    _closing: Any = None  # the thread close_soon started

    @property
    def client(self):
        """The Dask client, started the first time a stage needs it (or waited for, after start_client_soon)
        and closed when the run ends."""
        if self._client is None:
            if self._starting is not None:
                # the future stays in _starting until it has answered: a close meanwhile (a Ctrl-C while this
                # waits) still waits for the start and closes what it started
                self._client = self._starting.result()
                self._starting = None
            else:
                self._client = self._resources.enter_context(self.start_client())
        return self._client

    def start_client_soon(self) -> None:
        """Start the client in a background thread: the stages that need no cluster yet (parsing the input)
        run while its processes start; `client` waits for it."""
        if self._client is not None or self._starting is not None:
            return
        self._starting = in_thread("dask-start", lambda: self._resources.enter_context(self.start_client()))

    @property
    def client_ready(self) -> bool:
        """Whether `client` would return at once."""
        return self._client is not None or (self._starting is not None and self._starting.done())

    def close_soon(self, after: list | None = None) -> None:
        """Close the client in a background thread: the process goes on with work that needs no cluster; `close`
        waits for it. `after`: concurrent.futures.Futures (None entries skipped) of work that may still use the
        cluster: closed once they are done, whatever their outcome."""
        import threading

        def close_after() -> None:
            concurrent.futures.wait([future for future in after or () if future is not None])
            self._close_now()

        if self._closing is None:
            self._closing = threading.Thread(target=close_after, name="dask-close", daemon=True)
            self._closing.start()

    def hold(self, manager):
        """Enter the context manager `manager` (a local process the stages use) until the run closes; unlike the
        cluster, close_soon leaves it open."""
        return self._held.enter_context(manager)

    def close(self) -> None:
        """Exit what `hold` entered, then close the Dask client (and cluster) if one was started (or is starting:
        waited for, then closed)."""
        self._held.close()
        if self._closing is not None:
            self._closing.join()
        self._close_now()

    def _close_now(self) -> None:
        starting, self._starting, self._client = self._starting, None, None
        if starting is not None:
            try:
                starting.result()
            except BaseException:  # noqa: BLE001 - a failed start has nothing to close
                pass
        self._resources.close()


def _new_report():
    from report import RunReport  # imported when a run starts: `--help` stays free of pandas

    return RunReport()


class Stage(Protocol):
    name: str

    def describe(self, ctx: Context) -> str: ...

    def run(self, ctx: Context) -> StageResult | None: ...


def run_stages(stages: list[Stage], ctx: Context) -> None:
    """Run each stage in order; record and check every row stage's accounting."""
    timeline = ctx.report.sections.setdefault("timeline", {})  # seconds from the process's start to each stage
    for stage in stages:
        checkpoint(stage.name, "start")
        started = time.perf_counter()
        timeline[stage.name] = round(started - ctx.started, 3)
        result = stage.run(ctx)
        seconds = time.perf_counter() - started
        if result is None:
            continue
        if not result.adds and ctx.rows is not None and result.rows_in != ctx.rows:
            raise AccountingError(f"stage {stage.name}: starts with {result.rows_in} rows, "
                                  f"but the previous stage ended with {ctx.rows}")
        ctx.report.add_stage(stage.name, result.rows_in, result.rows_out, result.dropped, seconds)
        ctx.rows = (ctx.rows or 0) + result.rows_out if result.adds else result.rows_out
