"""Region keys: the exact, opaque name of a window of the global analysis grid.

A key is ``global`` or ``r<res>_<row0>_<col0>_<nrows>x<ncols>`` (the resolution in degrees, the
window's first row and column in the global grid and its shape: ``r0.25_200_300_40x40`` is
30–40° N, 105–95° W). It names a region's folders (:mod:`smda.storage.regions`) and is
accepted wherever a region is (``--region``, ``SMDA_REGION``): :func:`key_bbox` of its grid is a
box that selects exactly that grid again.
"""

from __future__ import annotations

import re

from smda.geo.grid import BBox, Grid, region_grid

__all__ = ["KEY_FORM", "bbox_of_region", "grid_of_key", "key_bbox", "region_key"]

KEY_FORM = "'global' or r<res>_<row0>_<col0>_<nrows>x<ncols> (e.g. r0.25_200_300_40x40)"
"""How a region key is written (the end of every key error)."""
_KEY = re.compile(r"^r(\d+(?:\.\d+)?)_(\d+)_(\d+)_(\d+)x(\d+)$")


def region_key(grid: Grid) -> str:
    """Folder name of a grid window: ``global`` or ``r<res>_<row0>_<col0>_<nrows>x<ncols>``."""
    if grid.is_global:
        return "global"
    return f"r{grid.res:g}_{grid.row0}_{grid.col0}_{grid.nrows}x{grid.ncols}"


def grid_of_key(key: str) -> Grid:
    """The grid window a key names (inverse of :func:`region_key`).

    Raises
    ------
    ValueError
        One line: the text is not a key, or names a window outside the globe.
    """
    if key == "global":
        return Grid.global_grid(0.25)
    match = _KEY.match(key)
    if match is None:
        raise ValueError(f"{key!r} is not a region key; expected {KEY_FORM}")
    res = float(match.group(1))
    row0, col0, nrows, ncols = (int(g) for g in match.groups()[1:])
    try:
        grid = Grid(res, row0, col0, nrows, ncols)
    except ValueError as exc:
        raise ValueError(f"region key {key!r} names no grid window: {exc}") from None
    if region_key(grid) != key:  # e.g. r0.250_…: one window, one key
        raise ValueError(f"region key {key!r} is not written as smda writes it: {region_key(grid)}")
    return grid


def key_bbox(grid: Grid) -> BBox:
    """A box whose :func:`region_grid` is ``grid`` exactly: the outer edges of its cells (for a
    window spanning every longitude from a column other than the first, a box a quarter of a
    cell short of the full circle, so that it starts at the window's first column).

    Raises
    ------
    ValueError
        If ``grid`` is not a window of the 0.25° analysis grid.
    """
    bounds = grid.bounds
    if grid.ncols == grid.global_shape[1] and grid.col0 != 0:
        west = -180.0 + grid.col0 * grid.res
        east = (west - grid.res / 4 + 180.0) % 360.0 - 180.0
        bounds = BBox(west, bounds.south, east, bounds.north)
    try:
        same = region_grid(bounds) == grid
    except ValueError:
        same = False
    if not same:
        raise ValueError(f"{grid} is not a window of the 0.25° analysis grid")
    return bounds


def bbox_of_region(text: str) -> BBox:
    """A region as written by users: a box ``west,south,east,north`` or a region key.

    Raises
    ------
    ValueError
        One line: what is wrong with the box or the key.
    """
    if "," in text:
        return BBox.parse(text)
    return key_bbox(grid_of_key(text.strip()))
