"""What the next day of a backfill needs, ready before it steps: :class:`ReadAhead`.

A one-process backfill (:func:`smda.ops.days.backfill_days`) steps its days in order, and a
day's staged inputs (ERA5 of D, the MSWEP window, SMAP, the static fields) do not depend on
the day before. So while day D steps, one background thread reads the inputs of D+1 (netCDF-C
decompresses outside the GIL; the reads are serialised by :data:`smda.storage.iolock.HDF5_IO`
as every read is). And D's analysis, once committed, is kept in memory for D+1 to step from,
instead of being read back from the state chain (the float32 values the state file holds).
What the serial loop guarantees is kept:

- **the same bytes**: a read ahead is used only when the day's input versions (the ledger
  records its provenance names) are the ones it was read under; otherwise (a fetch re-staged a
  file meanwhile) the day reads its inputs again, in its own thread;
- **the same errors**: a read ahead that failed (inputs not staged yet, a corrupt file) is
  dropped, and the day reads its inputs itself, so the error is raised where and as the serial
  loop raises it, from the state of the store at that moment;
- **bounded work and memory**: at most one day is read ahead, and only the day after one that
  is being stepped (a resumed backfill skipping committed days reads nothing ahead); leaving
  the block waits for the read in flight, whose result is dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date, timedelta
from types import TracebackType
from typing import Any

import numpy as np
import xarray as xr

from smda.science.cycle import DayInputs
from smda.storage.inputs import day_inputs, input_versions
from smda.storage.store import Store

__all__ = ["ReadAhead"]

LOG = logging.getLogger(__name__)


class ReadAhead:
    """What the next day needs: its inputs, read on one background thread while this day
    steps, and this day's analysis, kept once committed.

    Use as a context manager. For a day about to be stepped, :meth:`take` its inputs (None when
    they were not read ahead, or no longer match) and its :meth:`state_before`, then
    :meth:`start` reading the next day; once the day is committed, :meth:`keep` its analysis.

    Parameters
    ----------
    store:
        The region's staged store.
    history_days:
        Days of MSWEP a day's inputs span (``FeatureSpec.history_days``).
    until:
        The last day worth reading ahead (the end of the backfill); None: no end.
    """

    def __init__(self, store: Store, history_days: int, *, until: date | None = None) -> None:
        self._store = store
        self._history = history_days
        self.until = until
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="read-ahead")
        self._pending: tuple[date, Future[tuple[Mapping[str, Any], DayInputs]]] | None = None
        self._kept: tuple[date, xr.DataArray] | None = None

    def _read(self, day: date) -> tuple[Mapping[str, Any], DayInputs]:
        versions = input_versions(self._store, day, self._history)
        return versions, day_inputs(self._store, day, self._history)

    def start(self, day: date) -> None:
        """Start reading the inputs of ``day`` unless it is after :attr:`until` (a read
        nobody took is dropped)."""
        self._drop()
        if self.until is not None and day > self.until:
            return
        self._pending = (day, self._pool.submit(self._read, day))

    def take(self, day: date, versions: Mapping[str, Any]) -> DayInputs | None:
        """The inputs of ``day`` read ahead under ``versions`` (the provenance's ``inputs``);
        None when another day was read, the read failed or the inputs changed since."""
        if self._pending is None or self._pending[0] != day:
            self._drop()
            return None
        pending, self._pending = self._pending, None
        try:
            read_under, inputs = pending[1].result()
        except Exception as exc:  # the day reads its inputs itself and raises it there
            LOG.debug("read ahead of %s failed (%s): reading it again", day, exc)
            return None
        if dict(read_under) != dict(versions):
            LOG.info("inputs of %s changed while they were read ahead: reading them again", day)
            return None
        return inputs

    def keep(self, day: date, analysis: xr.DataArray) -> None:
        """Keep the analysis of ``day``, just committed to the chain, for the next day."""
        self._kept = (day, analysis.astype(np.float32))  # as the state file stores it

    def state_before(self, day: date) -> xr.DataArray | None:
        """The analysis kept for the day before ``day``, or None (read it from the chain)."""
        kept, self._kept = self._kept, None
        return kept[1] if kept is not None and kept[0] == day - timedelta(days=1) else None

    def _drop(self) -> None:
        """Forget the read in flight (cancelled if it has not begun; a read that has runs on,
        and the next one queues behind it)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending[1].cancel()

    def __enter__(self) -> ReadAhead:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._drop()
        self._pool.shutdown(wait=True, cancel_futures=True)
