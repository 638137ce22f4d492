"""The rows of the record stages after the clean: one distributed future per partition, in source order.

The stages need five things of a Dask DataFrame: map a function over the partitions, gather them, select columns,
append a frame, wait. `Partitions` does those on plain futures, so neither this process nor the workers import
dask.dataframe (about a second of CPU in each process, and the first stage that needed it waited for the workers'
import), and each map is submitted as it is called: no graph is built, optimised or converted.

The helpers `is_partitioned` and `compute` accept either kind (a Dask DataFrame too), so the dedup and
decontamination code runs unchanged on pandas frames, Dask DataFrames and Partitions.
"""
from __future__ import annotations

import operator
from typing import Any, Callable

import pandas as pd

SCALARS = (int, float, str, bytes, bool, type(None))


def as_meta(meta) -> pd.DataFrame | pd.Series:
    """An empty frame (or series) of the given shape: a frame, a {column: dtype} dict or a (name, dtype) tuple,
    the forms Dask's `meta=` takes."""
    if isinstance(meta, (pd.DataFrame, pd.Series)):
        return meta.iloc[:0]
    if isinstance(meta, tuple):
        name, dtype = meta
        return pd.Series(dtype=dtype, name=name)
    return pd.DataFrame({column: pd.Series(dtype=dtype) for column, dtype in dict(meta).items()})


class Partitions:
    """Pandas frames on a Dask cluster, one future each, in order; `meta` is an empty frame of their columns."""

    def __init__(self, client, futures: list, meta: pd.DataFrame | pd.Series):
        self.client, self.futures, self._meta = client, list(futures), meta

    @property
    def npartitions(self) -> int:
        return len(self.futures)

    @property
    def columns(self) -> pd.Index:
        return self._meta.columns

    def map_partitions(self, fn: Callable, *args, meta=None) -> "Partitions":
        """`fn(partition, *args)` on the worker that holds each partition, submitted now. An argument that is not
        a scalar (a set of ids, a family map) travels to the cluster once, not once per partition; a
        dask.delayed one (how callers of a Dask DataFrame pass those) is computed here first."""
        shared = [self._shared(arg) for arg in args]
        futures = [self.client.submit(_call, fn, future, *shared, pure=False) for future in self.futures]
        return Partitions(self.client, futures, as_meta(meta) if meta is not None else self._meta)

    def _shared(self, arg: Any) -> Any:
        from distributed import Future

        if isinstance(arg, (Future, *SCALARS)) or (isinstance(arg, tuple) and all(isinstance(a, SCALARS)
                                                                                 for a in arg)):
            return arg
        if hasattr(arg, "__dask_graph__"):
            import dask

            (arg,) = dask.compute(arg, scheduler="sync")
        return self.client.scatter([_Whole(arg)], hash=False)[0]

    def __getitem__(self, columns) -> "Partitions":
        return self.map_partitions(operator.itemgetter(columns), meta=self._meta[columns])

    def with_frame(self, frame: pd.DataFrame) -> "Partitions":
        """These partitions and `frame` as one more at the end (not copied: it is sent to the cluster once)."""
        return Partitions(self.client, [*self.futures, *self.client.scatter([frame], hash=False)], self._meta)

    def wait(self) -> "Partitions":
        """Wait for every partition (without fetching it); a task's exception is raised here."""
        for future in self.futures:
            if future.exception() is not None:
                future.result()  # raises it, with the worker's traceback
        return self

    def compute(self) -> pd.DataFrame | pd.Series:
        """Every partition gathered and concatenated in order (a series of a function's scalar results)."""
        parts = self.client.gather(self.futures)
        if not parts:
            return self._meta
        if all(isinstance(part, (pd.DataFrame, pd.Series)) for part in parts):
            return pd.concat(parts)
        return pd.Series(parts)


class _Whole:
    """An argument sent to the cluster as one pickle. Given a dict or a set of strings itself, distributed walks
    it item by item, each way: about half a second for the ten thousand ids of a family map."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __getstate__(self):
        return self.value

    def __setstate__(self, value):
        self.value = value


def _call(fn: Callable, partition, *args):
    return fn(partition, *(arg.value if isinstance(arg, _Whole) else arg for arg in args))


def is_partitioned(records) -> bool:
    """Whether `records` is a collection of partitions (Partitions or a Dask DataFrame), not a pandas frame."""
    return hasattr(records, "map_partitions") and hasattr(records, "npartitions")


def compute(collection, client=None):
    """A partitioned collection gathered on this process (a Dask collection computes on `client` if given)."""
    if client is None or isinstance(collection, Partitions):
        return collection.compute()
    return client.compute(collection).result()
