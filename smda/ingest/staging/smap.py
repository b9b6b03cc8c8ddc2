"""SMAP L3 retrievals: quality filtering and binning from EASE-Grid 2.0 onto the 0.25° grid.

Binning
-------
Every EASE-Grid 2.0 cell (M09 or M36) whose *centre* lies in a 0.25° cell of the target grid
belongs to that cell. The grid is cylindrical (a row's latitude and a column's longitude do not
depend on the other index), so :meth:`SmapBinIndex.build` locates the rows and the columns
separately and stores, for the block of EASE rows × columns inside the grid, the flat index
(``row * ncols + col``) of the target cell. Binning a pass is then a mask and two
``np.bincount`` calls. Build the index once per (EASE grid, target grid); it is cached.
:attr:`SmapBinIndex.row_band` is the band of EASE rows the block lies in: a reader can read
just those rows (``read_spl3smp(..., rows=index.row_band)``) and bin them with
``first_row=index.row_band.start``.

Quality (SCIENCE.md §3)
-----------------------
A retrieval is used when all of these hold:

- ``soil_moisture`` is finite and inside ``valid_range`` (default [0.02, 0.5] m3 m-3, the
  product's valid_min/valid_max, compared at float32 precision so that values the producer
  clipped to valid_min are kept; fills such as −9999 fall outside);
- ``retrieval_qual_flag`` has none of ``qual_bits`` set (default bit 0: set = retrieval not
  recommended) and is not the fill 65534;
- ``surface_flag`` has none of ``surface_bits`` set and is not the fill 65534. Default
  :data:`SURFACE_EXCLUDE_BITS`: 0 static water body, 5 snow or ice, 6 permanent snow or ice,
  7 frozen ground (radar/radiometer), 8 frozen ground (model) — the bit positions of the SMAP
  L3 ``surface_flag`` (flag_masks 1, 2, 4, … 2048).

AM and PM
---------
``combine="mean"`` (default): a cell's soil moisture is the mean of *all* valid retrievals of
the day, AM and PM pooled (each EASE cell of each pass counts once). ``"am_first"`` /
``"pm_first"`` use one pass where it has valid retrievals and the other elsewhere.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt
import xarray as xr

from smda.geo.ease2 import EaseGrid
from smda.geo.grid import Grid
from smda.ingest.staging import on_grid

__all__ = [
    "FLAG_FILL",
    "QUAL_EXCLUDE_BITS",
    "SURFACE_EXCLUDE_BITS",
    "VALID_RANGE",
    "SmapBinIndex",
    "SmapPassFields",
    "SmapPassLike",
    "bin_smap",
    "valid_retrievals",
]

IntArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]

FLAG_FILL = 65534
"""Fill value of the uint16 flags."""
VALID_RANGE = (0.02, 0.5)
"""Valid soil moisture range (m3 m-3) of the SMAP L3 products."""
QUAL_EXCLUDE_BITS: Mapping[int, str] = {0: "retrieval not recommended"}
"""``retrieval_qual_flag`` bits that reject a retrieval."""
SURFACE_EXCLUDE_BITS: Mapping[int, str] = {
    0: "static water body",
    5: "snow or ice",
    6: "permanent snow or ice",
    7: "frozen ground (radar/radiometer)",
    8: "frozen ground (model)",
}
"""``surface_flag`` bits that reject a retrieval (SMAP L3 flag_meanings)."""
Combine = Literal["mean", "am_first", "pm_first"]


class SmapPassFields(Protocol):
    """A pass as an object with the three fields as attributes (arrays (row, col))."""

    @property
    def soil_moisture(self) -> Any: ...
    @property
    def retrieval_qual_flag(self) -> Any: ...
    @property
    def surface_flag(self) -> Any: ...


SmapPassLike = Mapping[str, Any] | SmapPassFields
"""One pass: a mapping (dict, ``xr.Dataset``) or an object with ``soil_moisture`` (float,
m3 m-3, NaN or −9999 fill), ``retrieval_qual_flag`` and ``surface_flag`` (uint16), each a
full EASE grid array (row, col). PM names may carry the product's ``_pm`` suffix."""


def _field(one_pass: SmapPassLike, name: str) -> npt.NDArray[Any]:
    if isinstance(one_pass, Mapping):
        for key in (name, f"{name}_pm"):
            if key in one_pass:
                return np.asarray(one_pass[key])
        raise KeyError(f"SMAP pass lacks {name!r}; it has {sorted(map(str, one_pass))}")
    return np.asarray(getattr(one_pass, name))


def _mask(bits: Iterable[int]) -> int:
    mask = 0
    for bit in bits:
        if not 0 <= bit < 16:
            raise ValueError(f"flag bit {bit} is outside 0…15 (uint16)")
        mask |= 1 << bit
    return mask


@dataclass(frozen=True, eq=False)
class SmapBinIndex:
    """Which 0.25° cell each EASE-Grid 2.0 cell falls in (see the module docstring).

    Attributes
    ----------
    ease, grid:
        The EASE grid and the target grid.
    rows, cols:
        EASE rows and columns whose centres lie inside ``grid`` (rows increasing; columns
        west → east, wrapping across the antimeridian for such grids).
    grid_rows, grid_cols:
        Row/column in ``grid`` of each of ``rows`` / ``cols``.
    target:
        Flat index into ``grid`` (row * ncols + col) of the block ``rows × cols``, int32.
    """

    ease: EaseGrid
    grid: Grid
    rows: IntArray
    cols: IntArray
    grid_rows: IntArray
    grid_cols: IntArray
    target: npt.NDArray[np.int32]

    @classmethod
    def build(cls, ease: EaseGrid, grid: Grid) -> SmapBinIndex:
        """The index for ``ease`` → ``grid`` (cached: built once per pair)."""
        return _build(ease, grid)

    @classmethod
    def from_parts(
        cls,
        ease: EaseGrid,
        grid: Grid,
        rows: IntArray,
        cols: IntArray,
        grid_rows: IntArray,
        grid_cols: IntArray,
    ) -> SmapBinIndex:
        r, c = np.asarray(grid_rows, np.intp), np.asarray(grid_cols, np.intp)
        target = (r[:, None] * grid.ncols + c[None, :]).astype(np.int32)
        return cls(ease, grid, np.asarray(rows, np.intp), np.asarray(cols, np.intp), r, c, target)

    def as_arrays(self) -> dict[str, npt.NDArray[Any]]:
        """A compact, serialisable form (a few kB): pass to ``np.savez``."""
        g, e = self.grid, self.ease
        return {
            "ease": np.array([e.name]),
            "ease_shape": np.array([e.res, e.nrows, e.ncols], dtype=np.float64),
            "grid": np.array([g.res, g.row0, g.col0, g.nrows, g.ncols], dtype=np.float64),
            "rows": self.rows.astype(np.int32),
            "cols": self.cols.astype(np.int32),
            "grid_rows": self.grid_rows.astype(np.int32),
            "grid_cols": self.grid_cols.astype(np.int32),
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, npt.NDArray[Any]]) -> SmapBinIndex:
        """Inverse of :meth:`as_arrays` (e.g. ``np.load(path)``)."""
        res, nrows, ncols = (float(v) for v in arrays["ease_shape"])
        ease = EaseGrid(str(arrays["ease"][0]), res, round(nrows), round(ncols))
        gres, row0, col0, gnr, gnc = (float(v) for v in arrays["grid"])
        grid = Grid(gres, round(row0), round(col0), round(gnr), round(gnc))
        return cls.from_parts(
            ease, grid, arrays["rows"], arrays["cols"], arrays["grid_rows"], arrays["grid_cols"]
        )

    @property
    def row_band(self) -> slice:
        """The EASE rows from the first to the last of :attr:`rows` (empty for no overlap)."""
        if not self.rows.size:
            return slice(0, 0)
        return slice(int(self.rows.min()), int(self.rows.max()) + 1)

    def block(self, array: npt.NDArray[Any], first_row: int = 0) -> npt.NDArray[Any]:
        """The ``rows × cols`` block of an EASE array (a view when contiguous).

        ``array`` is the full grid (``first_row`` 0) or a band of whole rows starting at EASE
        row ``first_row`` that holds every row of :attr:`rows`.
        """
        band = self.rows - first_row
        if (
            array.ndim != 2
            or array.shape[1] != self.ease.ncols
            or array.shape[0] > self.ease.nrows - first_row
            or (band.size > 0 and (band.min() < 0 or band.max() >= array.shape[0]))
        ):
            raise ValueError(
                f"SMAP array has shape {array.shape} from row {first_row}, expected "
                f"{self.ease.shape} or a band of whole rows holding rows {self.row_band}"
            )
        return array[_as_slice(band)][:, _as_slice(self.cols)]

    @property
    def size(self) -> int:
        """Number of EASE cells inside the grid."""
        return int(self.target.size)


def _as_slice(index: IntArray) -> slice | IntArray:
    if index.size and np.all(np.diff(index) == 1):
        return slice(int(index[0]), int(index[-1]) + 1)
    return index


@functools.lru_cache(maxsize=4)
def _build(ease: EaseGrid, grid: Grid) -> SmapBinIndex:
    row_lat = ease.row_lats()
    col_lon = ease.col_lons()
    g_row, _, ok_row = grid.locate(row_lat, np.full_like(row_lat, grid.lons[0]))
    _, g_col, ok_col = grid.locate(np.full_like(col_lon, grid.lats[0]), col_lon)
    rows = np.flatnonzero(ok_row)
    cols = np.flatnonzero(ok_col)
    cols = cols[np.argsort(g_col[cols], kind="stable")]  # west → east across the window
    return SmapBinIndex.from_parts(ease, grid, rows, cols, g_row[rows], g_col[cols])


def valid_retrievals(
    soil_moisture: npt.NDArray[np.floating],
    retrieval_qual_flag: npt.NDArray[np.integer],
    surface_flag: npt.NDArray[np.integer],
    *,
    valid_range: tuple[float, float] = VALID_RANGE,
    qual_bits: Iterable[int] = tuple(QUAL_EXCLUDE_BITS),
    surface_bits: Iterable[int] = tuple(SURFACE_EXCLUDE_BITS),
) -> BoolArray:
    """Boolean mask of the retrievals to use (same shape as the inputs; module docstring)."""
    qual = np.asarray(retrieval_qual_flag)
    surf = np.asarray(surface_flag)
    sm = np.asarray(soil_moisture)
    # bounds at float32 precision (the products'): values clipped to valid_min are kept
    low, high = (float(np.float32(b)) for b in valid_range)
    with np.errstate(invalid="ignore"):
        ok = (sm >= low) & (sm <= high)
    ok &= (qual & _mask(qual_bits)) == 0
    ok &= qual != FLAG_FILL
    ok &= (surf & _mask(surface_bits)) == 0
    ok &= surf != FLAG_FILL
    return np.asarray(ok)


def _pass_sums(
    passes: Mapping[str, SmapPassLike],
    index: SmapBinIndex,
    first_row: int,
    valid_range: tuple[float, float],
    qual_bits: tuple[int, ...],
    surface_bits: tuple[int, ...],
) -> tuple[dict[str, npt.NDArray[np.float64]], dict[str, npt.NDArray[np.intp]]]:
    """Per pass (lower-case name): the sum and the number of valid retrievals in each cell."""
    n = index.grid.nrows * index.grid.ncols
    sums: dict[str, npt.NDArray[np.float64]] = {}
    counts: dict[str, npt.NDArray[np.intp]] = {}
    for name, one_pass in passes.items():
        sm = index.block(_field(one_pass, "soil_moisture"), first_row)
        ok = valid_retrievals(
            sm,
            index.block(_field(one_pass, "retrieval_qual_flag"), first_row),
            index.block(_field(one_pass, "surface_flag"), first_row),
            valid_range=valid_range,
            qual_bits=qual_bits,
            surface_bits=surface_bits,
        )
        target = index.target[ok]
        key = name.lower()
        sums[key] = np.bincount(target, weights=sm[ok].astype(np.float64), minlength=n)
        counts[key] = np.bincount(target, minlength=n)
    return sums, counts


def _combined(
    sums: Mapping[str, npt.NDArray[np.float64]],
    counts: Mapping[str, npt.NDArray[np.intp]],
    combine: Combine,
    n: int,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.intp]]:
    """The cells' total and count of the retrievals averaged (``combine``)."""
    zero_f, zero_i = np.zeros(n), np.zeros(n, dtype=np.intp)
    if combine == "mean":
        total = sum(sums.values(), zero_f)
        count = sum(counts.values(), zero_i)
    else:
        first, second = ("am", "pm") if combine == "am_first" else ("pm", "am")
        use_first = counts.get(first, zero_i) > 0
        total = np.where(use_first, sums.get(first, zero_f), sums.get(second, zero_f))
        count = np.where(use_first, counts.get(first, zero_i), counts.get(second, zero_i))
    return total, count


def bin_smap(
    passes: Mapping[str, SmapPassLike],
    index: SmapBinIndex,
    *,
    combine: Combine = "mean",
    valid_range: tuple[float, float] = VALID_RANGE,
    qual_bits: Iterable[int] = tuple(QUAL_EXCLUDE_BITS),
    surface_bits: Iterable[int] = tuple(SURFACE_EXCLUDE_BITS),
    first_row: int = 0,
) -> xr.Dataset:
    """Quality-filter SMAP L3 passes and bin them onto ``index.grid``.

    Parameters
    ----------
    passes:
        The day's passes by name (``"AM"``, ``"PM"``; other names are allowed), each with
        full EASE arrays (row, col) for ``index.ease`` (:data:`SmapPassLike`).
    index:
        :meth:`SmapBinIndex.build` for the passes' EASE grid and the target grid.
    combine:
        ``"mean"`` of all valid retrievals (AM and PM pooled), or ``"am_first"`` /
        ``"pm_first"`` (module docstring).
    valid_range, qual_bits, surface_bits:
        Quality filter (:func:`valid_retrievals`).
    first_row:
        EASE row of the passes' first array row when they hold a band of rows
        (:attr:`SmapBinIndex.row_band`) rather than the full grid.

    Returns
    -------
    Dataset (lat, lon): ``soil_moisture`` (float32, m3 m-3, NaN without valid retrievals),
    ``count`` (uint16, retrievals averaged into ``soil_moisture``) and ``count_<pass>``
    (uint16, valid retrievals of each pass; ``count_am`` and ``count_pm`` always present).
    """
    if combine not in ("mean", "am_first", "pm_first"):
        raise ValueError(f"unknown combine {combine!r}; choose mean, am_first or pm_first")
    sums, counts = _pass_sums(
        passes, index, first_row, valid_range, tuple(qual_bits), tuple(surface_bits)
    )
    total, count = _combined(sums, counts, combine, index.grid.nrows * index.grid.ncols)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    grid = index.grid

    def layer(values: npt.NDArray[Any], dtype: type[np.generic]) -> npt.NDArray[Any]:
        return np.asarray(values, dtype=dtype).reshape(grid.shape)

    data = {
        "soil_moisture": on_grid(
            layer(mean, np.float32),
            grid,
            "soil_moisture",
            {
                "units": "m3 m-3",
                "long_name": "SMAP L3 soil moisture, mean of valid retrievals in the cell",
                "cell_methods": f"area: mean time: mean ({combine} of passes)",
            },
        ),
        "count": on_grid(
            layer(np.minimum(count, 65535), np.uint16),
            grid,
            "count",
            {"units": "1", "long_name": "number of retrievals averaged"},
        ),
    }
    for key in sorted({"am", "pm", *counts}):
        data[f"count_{key}"] = on_grid(
            layer(np.minimum(counts.get(key, np.zeros_like(count)), 65535), np.uint16),
            grid,
            f"count_{key}",
            {"units": "1", "long_name": f"number of valid {key.upper()} retrievals"},
        )
    ds = xr.Dataset(data)
    ds.attrs.update(
        source=f"SMAP L3 on EASE-Grid 2.0 {index.ease.name}",
        combine=combine,
        valid_range=list(valid_range),
        qual_exclude_bits=list(qual_bits),
        surface_exclude_bits=list(surface_bits),
    )
    return ds
