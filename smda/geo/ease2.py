"""EASE-Grid 2.0 global grids (EPSG:6933), the grids of the SMAP products.

The global EASE-Grid 2.0 is a cylindrical equal-area projection (``+proj=cea +lat_ts=30
+lon_0=0 +datum=WGS84``) cut into square cells. smda meets two of its grids:

- ``M09``: 1624 rows × 3856 columns of 9008.055210146 m (SPL3SMP_E, 9 km);
- ``M36``: 406 rows × 964 columns of 36032.220840584 m (SPL3SMP, 36 km).

Both share the upper-left corner x0 = −17367530.44516 m, y0 = 7314540.83064 m; the centre of
cell (row, col) is ``x = x0 + (col + 0.5)·res``, ``y = y0 − (row + 0.5)·res``. Rows run north to
south, columns west to east. Latitude depends on the row only and longitude on the column only.

The projection arithmetic is pyproj's (one cached transformer per direction); this module is
part of the science core and does no I/O.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from pyproj import Transformer

from smda.geo.grid import BBox

__all__ = ["M09", "M36", "X0", "Y0", "EaseGrid"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]

X0 = -17367530.44516
"""Western edge of the global EASE-Grid 2.0 (m, EPSG:6933)."""
Y0 = 7314540.83064
"""Northern edge of the global EASE-Grid 2.0 (m, EPSG:6933)."""

_EPS = 1e-9


@functools.cache
def _transformer(inverse: bool) -> Transformer:
    """EPSG:6933 → EPSG:4326 (``inverse``) or back, with x = longitude and y = latitude."""
    src, dst = ("EPSG:6933", "EPSG:4326") if inverse else ("EPSG:4326", "EPSG:6933")
    return Transformer.from_crs(src, dst, always_xy=True)


@dataclass(frozen=True)
class EaseGrid:
    """One global EASE-Grid 2.0 grid.

    Parameters
    ----------
    name:
        Short name used by the SMAP products (``"M09"``, ``"M36"``).
    res:
        Cell size in metres (EPSG:6933 units).
    nrows, ncols:
        Shape of the global grid (rows north → south, columns west → east).
    """

    name: str
    res: float
    nrows: int
    ncols: int

    @property
    def shape(self) -> tuple[int, int]:
        """(row, col) shape of the global grid."""
        return self.nrows, self.ncols

    def xy(self, rows: npt.ArrayLike, cols: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Projected centre coordinates (m) of cells; ``rows`` and ``cols`` broadcast."""
        r = np.asarray(rows, dtype=np.float64)
        c = np.asarray(cols, dtype=np.float64)
        x = X0 + (c + 0.5) * self.res
        y = Y0 - (r + 0.5) * self.res
        x, y = np.broadcast_arrays(x, y)
        return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)

    def lat_lon(self, rows: npt.ArrayLike, cols: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Centre latitude and longitude (degrees) of cells.

        ``rows`` and ``cols`` are integer indices that broadcast against each other (pass
        ``rows[:, None]`` and ``cols[None, :]`` for a window). Returns ``(lat, lon)`` with the
        broadcast shape; longitudes are in [−180, 180].
        """
        x, y = self.xy(rows, cols)
        lon, lat = _transformer(True).transform(x, y)
        return np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)

    def row_lats(self, rows: npt.ArrayLike | None = None) -> FloatArray:
        """Centre latitude of each row (degrees_north), shape (len(rows),), default all rows."""
        r = np.arange(self.nrows) if rows is None else np.asarray(rows)
        lat, _ = self.lat_lon(r, np.zeros_like(r))
        return lat

    def col_lons(self, cols: npt.ArrayLike | None = None) -> FloatArray:
        """Centre longitude of each column (degrees_east), shape (len(cols),), default all."""
        c = np.arange(self.ncols) if cols is None else np.asarray(cols)
        _, lon = self.lat_lon(np.full_like(c, self.nrows // 2), c)
        return lon

    def row_col(
        self, lat: npt.ArrayLike, lon: npt.ArrayLike
    ) -> tuple[IntArray, IntArray, BoolArray]:
        """The cells containing points.

        Parameters
        ----------
        lat, lon:
            Point coordinates in degrees (broadcast against each other); any longitude
            convention.

        Returns
        -------
        ``(row, col, valid)`` with the broadcast shape; ``valid`` is False for points outside
        the grid (beyond ±85.04° latitude) or with non-finite coordinates, where row and col
        are 0.
        """
        la = np.asarray(lat, dtype=np.float64)
        lo = (np.asarray(lon, dtype=np.float64) + 180.0) % 360.0 - 180.0
        la, lo = np.broadcast_arrays(la, lo)
        finite = np.isfinite(la) & np.isfinite(lo)
        with np.errstate(invalid="ignore"):
            x, y = _transformer(False).transform(
                np.where(finite, lo, 0.0), np.where(finite, la, 0.0)
            )
            col = np.floor((np.asarray(x) - X0) / self.res)
            row = np.floor((Y0 - np.asarray(y)) / self.res)
        valid = finite & (row >= 0) & (row < self.nrows) & (col >= 0) & (col < self.ncols)
        row_i = np.where(valid, row, 0).astype(np.intp)
        col_i = np.where(valid, col, 0).astype(np.intp)
        return row_i, col_i, np.asarray(valid)

    def rows_cols_in_bbox(self, bbox: BBox) -> tuple[IntArray, IntArray]:
        """Rows and columns whose cell centres fall inside ``bbox`` (edges included).

        Returns ``(rows, cols)``: increasing row indices (north → south), and column indices
        ordered west → east across the box — for a box crossing the antimeridian the columns
        wrap from the eastern end of the grid to its western start. Either may be empty.
        """
        lats = self.row_lats()
        rows = np.flatnonzero((lats >= bbox.south - _EPS) & (lats <= bbox.north + _EPS))
        lons = self.col_lons()
        west = (bbox.west + 180.0) % 360.0 - 180.0
        offset = (lons - west) % 360.0
        inside = offset <= bbox.width + _EPS
        if bbox.width >= 360.0 - _EPS:
            inside[:] = True
        cols = np.flatnonzero(inside)
        cols = cols[np.argsort(offset[cols], kind="stable")]
        return rows.astype(np.intp), cols.astype(np.intp)

    def __str__(self) -> str:
        return f"EASE2 {self.name} ({self.nrows}×{self.ncols}, {self.res} m)"


M09 = EaseGrid("M09", 9008.055210146, 1624, 3856)
"""EASE-Grid 2.0 global 9 km grid (SPL3SMP_E)."""
M36 = EaseGrid("M36", 36032.220840584, 406, 964)
"""EASE-Grid 2.0 global 36 km grid (SPL3SMP)."""
