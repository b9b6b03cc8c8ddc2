"""MSWEP daily precipitation: 0.1° cells → the 0.25° grid, conservatively.

MSWEP's values are daily totals (mm day-1, 00–24 UTC) on the cells of the global 0.1°
cell-centred grid (1800 × 3600, latitude 89.95 … −89.95). Each 0.25° cell takes the
area-weighted mean of the 0.1° cells overlapping it (first-order conservative regridding,
:func:`smda.geo.regrid.conservative`), which preserves the area-weighted mean precipitation and
splits the 0.1° cells that straddle two 0.25° cells. The overlap weights depend only on the two
grids and are computed once per (source window, target grid) pair and cached; only the block of
source cells they touch is regridded (a regional target uses a few thousand cells of a global
field, not 6.5 million).
"""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
import xarray as xr

from smda.geo.grid import Grid
from smda.geo.regrid import conservative, conservative_weights, window_of_centres
from smda.ingest.staging import lat_lon_dims, on_grid, squeeze_extra

__all__ = ["MSWEP_RES", "mswep_to_grid", "mswep_weights"]

MSWEP_RES = 0.1
"""MSWEP cell size (degrees)."""


@functools.lru_cache(maxsize=8)
def mswep_weights(src: Grid, dst: Grid) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Conservative overlap weights from an MSWEP window to ``dst``, cached per pair."""
    return conservative_weights(src, dst)


def _span(used: npt.NDArray[np.intp], n: int, circular: bool) -> npt.NDArray[np.intp]:
    """Positions 0…n-1 of the shortest run (wrapping when ``circular``) holding ``used``."""
    if not circular:
        return np.arange(used[0], used[-1] + 1, dtype=np.intp)
    gaps = np.diff(np.append(used, used[0] + n))  # distance from each used index to the next
    k = int(np.argmax(gaps))
    start = int(used[(k + 1) % used.size])
    return np.asarray((start + np.arange(n - int(gaps[k]) + 1)) % n, dtype=np.intp)


def _block(
    src: Grid, dst: Grid
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], Grid, tuple[sp.csr_matrix, sp.csr_matrix]]:
    """Rows and columns of ``src`` that overlap ``dst``, as a window, with its weights (cut
    from the cached :func:`mswep_weights`, which is cheap)."""
    w_lat, w_lon = mswep_weights(src, dst)
    used_rows = np.flatnonzero(np.asarray(w_lat.sum(axis=0)).ravel() > 0)
    used_cols = np.flatnonzero(np.asarray(w_lon.sum(axis=0)).ravel() > 0)
    rows = _span(used_rows, src.nrows, circular=False)
    cols = _span(used_cols, src.ncols, circular=src.is_global)
    window = Grid(
        src.res,
        src.row0 + int(rows[0]),
        (src.col0 + int(cols[0])) % src.global_shape[1],
        rows.size,
        cols.size,
    )
    return rows, cols, window, (w_lat[:, rows].tocsr(), w_lon[:, cols].tocsr())


def mswep_to_grid(field01: xr.DataArray, grid: Grid, *, min_coverage: float = 0.5) -> xr.DataArray:
    """Conservatively regrid one MSWEP daily field to ``grid``.

    Parameters
    ----------
    field01:
        Precipitation (lat, lon) in mm day-1 at 0.1° cell centres (any window of the global
        0.1° grid covering ``grid``, either latitude order, any longitude convention or
        order; a size-1 time dimension is dropped). NaN marks missing cells.
    grid:
        Target cell-centred grid (0.25°).
    min_coverage:
        Fraction of a target cell's area that must have valid data, else NaN.

    Returns
    -------
    DataArray ``precipitation`` (lat, lon), float32, mm day-1.

    Raises
    ------
    ValueError
        If the coordinates are not 0.1° cell centres or do not cover ``grid``.
    """
    field = squeeze_extra(field01, "MSWEP field")
    lat_name, lon_name = lat_lon_dims(field)
    src, lat_order, lon_order = window_of_centres(
        field[lat_name].values, field[lon_name].values, MSWEP_RES
    )
    rows, cols, window, weights = _block(src, grid)
    values = np.asarray(field.values)[np.ix_(lat_order[rows], lon_order[cols])]
    out = conservative(values, window, grid, min_coverage=min_coverage, weights=weights)
    return on_grid(
        out,
        grid,
        "precipitation",
        {
            "units": "mm day-1",
            "long_name": "daily precipitation (00-24 UTC), MSWEP",
            "cell_methods": "time: sum area: mean (conservative, 0.1° → grid)",
        },
    )
