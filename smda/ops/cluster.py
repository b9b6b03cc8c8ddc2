"""The Dask cluster that training and the tiled backfill run on.

``smda train`` and ``smda backfill`` take ``--dask-scheduler ADDRESS`` (or
``SMDA_DASK_SCHEDULER``): the address of a running ``dask scheduler`` whose workers have smda
installed and see the same data directory. Without an address, a local cluster sized to the
machine is started for the run and closed with it: one single-threaded worker process per core
(LightGBM and the compiled predictor then use the threads OpenMP allows each worker), the
machine's memory split evenly between them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from smda.config import DASK_SCHEDULER_ENV
from smda.errors import ConfigError

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["DASK_SCHEDULER_ENV", "dask_client"]


@contextmanager
def dask_client(address: str | None) -> Iterator[Client]:
    """A client of the Dask scheduler at ``address``, or of a local cluster started here and
    closed on exit (module docstring).

    Raises
    ------
    ConfigError
        If no scheduler answers at ``address`` (the message names it).
    """
    from distributed import Client, LocalCluster

    if address:
        try:
            client = Client(address, timeout="20s")  # type: ignore[no-untyped-call]
        except OSError as exc:
            raise ConfigError(
                f"cannot reach the Dask scheduler at {address}: {exc}; start it (dask scheduler) "
                f"or unset {DASK_SCHEDULER_ENV} to run on a local cluster"
            ) from None
        with client:
            yield client
        return
    import psutil

    workers = max(1, os.cpu_count() or 1)
    memory = int(psutil.virtual_memory().total // workers)
    with (
        LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            memory_limit=memory,
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,  # type: ignore[no-untyped-call]
    ):
        yield client
