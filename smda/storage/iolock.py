"""One lock for netCDF/HDF5 file work: the C libraries are not thread-safe.

netCDF-C and HDF5 (as built in the netCDF4 and h5py wheels) must not be entered by two
threads at once; concurrent fetches, staging and the twin's replicas (when they run in the same
process, as in tests) all read or write such files. Every smda function that opens, reads or
writes a netCDF/HDF5 file holds :data:`HDF5_IO` (re-entrant) for the whole operation and
returns data already loaded in memory.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable

__all__ = ["HDF5_IO", "serialized"]

HDF5_IO = threading.RLock()


def serialized[**P, R](fn: Callable[P, R]) -> Callable[P, R]:
    """Run ``fn`` while holding :data:`HDF5_IO`."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with HDF5_IO:
            return fn(*args, **kwargs)

    return wrapper
