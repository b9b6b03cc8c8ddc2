"""The analysis grid as a value: regular, cell-centred latitude/longitude grids.

smda works on the global 0.25° cell-centred grid (720 × 1440, latitude 89.875 … −89.875,
longitude −179.875 … 179.875, EPSG:4326). Regions are subsets of it that stay aligned to the
global cells; a region may cross the antimeridian, in which case its column indices wrap around
and its longitudes jump from 179.875 to −179.875.

This module is part of the science core: it imports numpy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Self

import numpy as np
import numpy.typing as npt

__all__ = ["GLOBAL_025", "REGION_FORM", "BBox", "Grid", "region_grid"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

_EPS = 1e-9


def _wrap_lon(lon: FloatArray | float) -> FloatArray:
    """Wrap longitudes into [−180, 180)."""
    return np.asarray((np.asarray(lon, dtype=np.float64) + 180.0) % 360.0 - 180.0)


REGION_FORM = (
    "expected 'west,south,east,north' in degrees: west, east in [-180, 180], south < north in "
    "[-90, 90] (west > east crosses the antimeridian, e.g. 170,-20,-170,0)"
)
"""How a region is written (``--region``, ``SMDA_REGION``): the end of every region error."""


@dataclass(frozen=True)
class BBox:
    """A geographic bounding box in degrees.

    ``west > east`` means the box crosses the antimeridian (e.g. west=170, east=−170 is a
    20°-wide box centred on 180°); west=−180, east=180 is the whole circle of longitudes.

    Raises
    ------
    ValueError
        One line naming every problem (:meth:`problems`) and the expected form.
    """

    west: float
    south: float
    east: float
    north: float

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ValueError(f"invalid region {self}: {'; '.join(problems)}; {REGION_FORM}")

    def problems(self) -> list[str]:
        """What is wrong with the box (empty when it is valid): a coordinate that is not a
        finite number or is out of range, south not below north, west equal to east."""
        out = []
        limits = {"west": 180.0, "south": 90.0, "east": 180.0, "north": 90.0}
        for name, limit in limits.items():
            value = getattr(self, name)
            if not math.isfinite(value):
                out.append(f"{name}={value} is not a finite number")
            elif not -limit <= value <= limit:
                out.append(f"{name}={value:g} is outside [-{limit:g}, {limit:g}]")
        if self.south >= self.north:
            out.append(f"south={self.south:g} is not below north={self.north:g}")
        if self.west == self.east:
            out.append(f"west and east are both {self.west:g} (a box of zero width)")
        return out

    @classmethod
    def parse(cls, text: str) -> BBox:
        """Parse a region ``"west,south,east,north"`` (degrees), the form of ``--region``
        options and ``SMDA_REGION``.

        Raises
        ------
        ValueError
            One line saying what is wrong and the expected form (:data:`REGION_FORM`): not
            four numbers, an invalid box (:meth:`problems`), or a box that contains no cell of
            the 0.25° analysis grid (:func:`region_grid`).
        """
        parts = [p.strip() for p in text.split(",")]
        try:
            if len(parts) != 4:
                raise ValueError(f"{len(parts)} value(s)")
            west, south, east, north = (float(p) for p in parts)
        except ValueError:
            raise ValueError(f"region {text!r} is not four numbers; {REGION_FORM}") from None
        box = cls(west, south, east, north)
        region_grid(box)  # a region must hold at least one analysis cell
        return box

    @property
    def width(self) -> float:
        """East–west extent in degrees (handles the antimeridian)."""
        width = (self.east - self.west) % 360.0
        return 360.0 if width == 0.0 and self.east != self.west else width

    @property
    def crosses_antimeridian(self) -> bool:
        return float(_wrap_lon(self.west)) + self.width > 180.0 + _EPS

    def __str__(self) -> str:
        return f"{self.west:g},{self.south:g},{self.east:g},{self.north:g}"


@dataclass(frozen=True)
class Grid:
    """A regular cell-centred lat/lon grid that is a window of a global grid.

    Parameters
    ----------
    res:
        Cell size in degrees (same in latitude and longitude).
    row0, col0:
        Index of the first (northernmost, westernmost) cell in the global grid of this
        resolution. ``col0 + ncols`` may exceed the global column count: columns wrap.
    nrows, ncols:
        Shape of the window.
    """

    res: float
    row0: int
    col0: int
    nrows: int
    ncols: int

    def __post_init__(self) -> None:
        n_lat, n_lon = self.global_shape
        if abs(n_lat * self.res - 180.0) > 1e-6 or abs(n_lon * self.res - 360.0) > 1e-6:
            raise ValueError(f"resolution {self.res}° does not divide the globe evenly")
        if not (self.row0 >= 0 and self.row0 + self.nrows <= n_lat and self.nrows > 0):
            raise ValueError(f"rows {self.row0}..{self.row0 + self.nrows} outside 0..{n_lat}")
        if not (0 <= self.col0 < n_lon and 0 < self.ncols <= n_lon):
            raise ValueError(f"columns start {self.col0}, count {self.ncols} invalid for {n_lon}")

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def global_grid(cls, res: float = 0.25) -> Self:
        """The whole globe at ``res`` degrees (0.25 → 720 × 1440)."""
        return cls(res=res, row0=0, col0=0, nrows=round(180.0 / res), ncols=round(360.0 / res))

    def subset(self, bbox: BBox) -> Grid:
        """Cells of the global grid whose centres lie inside ``bbox``, aligned to the globe.

        The result is expressed relative to the global grid of the same resolution and must
        lie within this grid.
        """
        n_lon = self.global_shape[1]
        r_start = math.ceil((90.0 - bbox.north) / self.res - 0.5 - _EPS)
        r_stop = math.floor((90.0 - bbox.south) / self.res - 0.5 + _EPS) + 1
        west = float(_wrap_lon(bbox.west))
        c_start = math.ceil((west + 180.0) / self.res - 0.5 - _EPS)
        c_stop = math.floor((west + bbox.width + 180.0) / self.res - 0.5 + _EPS) + 1
        nrows, ncols = r_stop - r_start, min(c_stop - c_start, n_lon)
        if nrows <= 0 or ncols <= 0:
            raise ValueError(
                f"region {bbox} contains no {self.res:g}° grid cell centre (the centres are at "
                f"odd multiples of {self.res / 2:g}°; a box {self.res:g}° wide and tall holds one)"
            )
        sub = Grid(self.res, max(r_start, 0), c_start % n_lon, nrows, ncols)
        if not self.contains(sub):
            raise ValueError(f"region {bbox} is not inside grid {self}")
        return sub

    # -- geometry -----------------------------------------------------------------------------
    @property
    def global_shape(self) -> tuple[int, int]:
        return round(180.0 / self.res), round(360.0 / self.res)

    @property
    def shape(self) -> tuple[int, int]:
        """(lat, lon) shape."""
        return self.nrows, self.ncols

    @property
    def is_global(self) -> bool:
        return self.shape == self.global_shape

    @property
    def rows(self) -> IntArray:
        """Global row index of each row."""
        return np.arange(self.row0, self.row0 + self.nrows, dtype=np.intp)

    @property
    def cols(self) -> IntArray:
        """Global column index of each column (wrapped)."""
        return (np.arange(self.col0, self.col0 + self.ncols, dtype=np.intp)) % self.global_shape[1]

    @property
    def lats(self) -> FloatArray:
        """Cell-centre latitudes, north to south (degrees_north)."""
        return np.asarray(90.0 - (self.rows + 0.5) * self.res, dtype=np.float64)

    @property
    def lons(self) -> FloatArray:
        """Cell-centre longitudes in [−180, 180) (degrees_east); they jump at the antimeridian."""
        return np.asarray(-180.0 + (self.cols + 0.5) * self.res, dtype=np.float64)

    @property
    def lons_continuous(self) -> FloatArray:
        """Cell-centre longitudes increasing monotonically (may exceed 180 across the antimeridian)."""
        cols = np.arange(self.col0, self.col0 + self.ncols, dtype=np.float64)
        return np.asarray(-180.0 + (cols + 0.5) * self.res, dtype=np.float64)

    @property
    def bounds(self) -> BBox:
        """Outer edges of the window (west may exceed east across the antimeridian)."""
        north = 90.0 - self.row0 * self.res
        west = -180.0 + self.col0 * self.res
        south = north - self.nrows * self.res
        if self.ncols == self.global_shape[1]:  # every longitude: −180 … 180, not west == east
            return BBox(-180.0, south, 180.0, north)
        return BBox(west, south, float(_wrap_lon(west + self.ncols * self.res)), north)

    @property
    def transform(self) -> tuple[float, float, float, float, float, float]:
        """GDAL-ordered affine (a, b, c, d, e, f) with continuous longitudes."""
        return (
            self.res,
            0.0,
            -180.0 + self.col0 * self.res,
            0.0,
            -self.res,
            90.0 - self.row0 * self.res,
        )

    crs = "EPSG:4326"

    def cell_area(self) -> FloatArray:
        """Relative area of each row's cells on the sphere, shape (lat,), proportional to
        ``sin(north) − sin(south)`` (used as weights for area-weighted means)."""
        north = np.deg2rad(self.lats + self.res / 2)
        south = np.deg2rad(self.lats - self.res / 2)
        return np.asarray(np.sin(north) - np.sin(south))

    def contains(self, other: Grid) -> bool:
        """True if every cell of ``other`` (same resolution) is a cell of this grid."""
        if abs(other.res - self.res) > 1e-12:
            return False
        rows_ok = self.row0 <= other.row0 and other.row0 + other.nrows <= self.row0 + self.nrows
        if self.ncols == self.global_shape[1]:
            return rows_ok
        offset = (other.col0 - self.col0) % self.global_shape[1]
        return rows_ok and offset + other.ncols <= self.ncols

    def index_of(self, other: Grid) -> tuple[slice, slice]:
        """Slices selecting ``other`` (a sub-window) out of an array on this grid."""
        if not self.contains(other):
            raise ValueError(f"{other} is not inside {self}")
        r = other.row0 - self.row0
        c = (other.col0 - self.col0) % self.global_shape[1]
        return slice(r, r + other.nrows), slice(c, c + other.ncols)

    def locate(
        self, lat: FloatArray, lon: FloatArray
    ) -> tuple[IntArray, IntArray, npt.NDArray[np.bool_]]:
        """Row/column (within this grid) of the cells containing points, and a validity mask."""
        lat = np.asarray(lat, dtype=np.float64)
        lon = np.asarray(lon, dtype=np.float64)
        n_lon = self.global_shape[1]
        grow = np.floor((90.0 - lat) / self.res).astype(np.intp)
        gcol = np.floor((_wrap_lon(lon) + 180.0) / self.res).astype(np.intp) % n_lon
        row = grow - self.row0
        col = (gcol - self.col0) % n_lon
        ok = (
            (row >= 0)
            & (row < self.nrows)
            & (col < self.ncols)
            & np.isfinite(lat)
            & np.isfinite(lon)
        )
        return np.where(ok, row, 0), np.where(ok, col, 0), ok

    def __str__(self) -> str:
        return f"Grid({self.res}°, {self.nrows}×{self.ncols} at row {self.row0}, col {self.col0}; {self.bounds})"


GLOBAL_025 = Grid.global_grid(0.25)


def region_grid(region: str | BBox | None) -> Grid:
    """The analysis grid of a region: the window of :data:`GLOBAL_025` covering it (a
    ``west,south,east,north`` string or a box), or the whole globe for None.

    Raises
    ------
    ValueError
        One line: the region is invalid (:meth:`BBox.parse`) or contains no 0.25° cell centre.
    """
    if region is None:
        return GLOBAL_025
    bbox = BBox.parse(region) if isinstance(region, str) else region
    try:
        return GLOBAL_025.subset(bbox)
    except ValueError as exc:
        raise ValueError(f"{exc}; {REGION_FORM}") from None
