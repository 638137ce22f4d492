"""Dask plumbing for the record stages: the client (a LocalCluster or an existing cluster), submitting the parsed
chunks, waiting with a progress bar, per-partition value counts, and telling a lost worker from a bug."""
from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger("lawqa")
HERE = Path(__file__).resolve().parent


@contextmanager
def dask_client(cfg):
    """A Dask client for `cfg` (config.ClusterConfig): on an existing cluster, with our modules uploaded to it,
    or on a fresh LocalCluster of `n_workers` single-threaded processes."""
    from distributed import Client, LocalCluster

    if cfg.scheduler_address:
        client = Client(cfg.scheduler_address)
        upload_modules(client)
        log.info(f"dask: connected to {cfg.scheduler_address} (dashboard {client.dashboard_link})")
        warm_up(client)
        try:
            yield client
        finally:
            client.close()
        return
    cluster = LocalCluster(n_workers=cfg.n_workers, threads_per_worker=1, processes=True,
                           memory_limit=cfg.memory_limit, dashboard_address="127.0.0.1:0",
                           # the scheduler's HTTP server stays on 127.0.0.1 either way; without --dashboard it serves
                           # no Bokeh pages, whose imports held this process's interpreter lock for ~1 s at start-up
                           scheduler_kwargs={"dashboard": cfg.dashboard},
                           # a worker's own log lines (a heartbeat lost while Ctrl-C tears the cluster down) tell
                           # the user nothing; a failed task still reaches the driver as an exception
                           silence_logs=logging.CRITICAL)
    client = Client(cluster)
    log.info(f"dask: LocalCluster with {cfg.n_workers} worker(s)"
             + (f", dashboard {client.dashboard_link}" if cfg.dashboard else " (--dashboard to serve its dashboard)"))
    warm_up(client)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


# what the clean + filter tasks import: loaded when the cluster starts, so no stage's time includes a first import
TASK_MODULES = ("modifiers", "filters", "card", "dedup.features")


def _import_modules(names: tuple[str, ...]) -> None:
    import importlib

    for name in names:
        importlib.import_module(name)


def preload(client, modules: tuple[str, ...]) -> None:
    """Import `modules` in each worker: a task of its own, not waited for (a worker's next task queues behind it)."""
    from distributed import fire_and_forget

    for worker in client.scheduler_info()["workers"]:
        fire_and_forget(client.submit(_import_modules, modules, workers=[worker], allow_other_workers=False,
                                      pure=False))


def warm_up(client) -> None:
    """Import TASK_MODULES in each worker (the workers are idle until convert's first partition, which queues
    behind it)."""
    preload(client, TASK_MODULES)


def upload_modules(client) -> None:
    """Ship our modules to the workers of another cluster, which cannot import them from this checkout. The flat
    modules go unloaded (they import each other: loading one before its dependency arrived would fail); packages
    go as zip files, loaded last, once everything they import is there."""
    import tempfile
    import zipfile

    for module in sorted(HERE.glob("*.py")):
        if module.name != "main.py":
            client.upload_file(str(module), load=False)
    with tempfile.TemporaryDirectory(prefix="lawqa-upload-") as tmp:
        for package in sorted(p.parent for p in HERE.glob("*/__init__.py")):
            archive = Path(tmp) / f"{package.name}.zip"
            with zipfile.ZipFile(archive, "w") as zf:
                for source in sorted(package.glob("*.py")):
                    zf.write(source, f"{package.name}/{source.name}")
            client.upload_file(str(archive), load=True)


def submit_bounded(client, fn, chunks, *args, per_worker: int = 2) -> list:
    """`fn(chunk, *args)` on a worker for each chunk, submitted as the driver produces it; returns the futures.
    At most `per_worker` chunks per worker wait unfinished: the driver stops producing until a worker catches up,
    so raw input does not pile up in worker memory when the driver parses faster than the workers work."""
    from distributed import wait

    limit = per_worker * max(1, len(client.scheduler_info()["workers"]))
    futures, pending = [], []
    for chunk in chunks:
        future = client.submit(fn, client.scatter(chunk, hash=False), *args, pure=False)
        futures.append(future)
        pending.append(future)
        if len(pending) >= limit:
            wait(pending, return_when="FIRST_COMPLETED")
            pending = [f for f in pending if not f.done()]
    return futures


def split_results(client, futures: list, meta):
    """For futures of (frame, *extras) tuples: the frames as Partitions, which stay on the workers in order,
    and the extras of each, gathered to the driver."""
    import operator

    from partitions import Partitions

    extras = client.gather([client.submit(lambda result: result[1:], f, pure=False) for f in futures])
    frames = Partitions(client, [client.submit(operator.itemgetter(0), f) for f in futures], meta)
    return frames, extras


def dask_wait(collection, desc: str, progress: bool) -> None:
    """`distributed.wait` on a persisted collection, with a tqdm bar over its partitions."""
    from distributed import as_completed, futures_of, wait

    futures = futures_of(collection)
    if progress and futures:
        from tqdm import tqdm

        with tqdm(total=len(futures), desc=desc, unit="part") as bar:
            for _ in as_completed(futures):
                bar.update(1)
    wait(collection)


def _value_counts(series):
    return series.value_counts().to_frame("n").reset_index()


def count_values(column) -> dict[str, int]:
    """Value counts of a partitioned column (Partitions or Dask), summed per partition (no shuffle)."""
    name = column._meta.name
    per_partition = column.map_partitions(_value_counts, meta={name: "object", "n": "int64"}).compute()
    return {str(k): int(v) for k, v in per_partition.groupby(name)["n"].sum().items()}


def is_cluster_error(exc: BaseException) -> bool:
    """A failure of the Dask cluster itself (a worker died, data lost), not of our code."""
    return (type(exc).__module__.split(".")[0] == "distributed"
            or type(exc).__name__ in ("KilledWorker", "FuturesCancelledError", "CommClosedError"))
