"""Regridding between the grids smda meets, without I/O.

- :func:`conservative` — area-weighted (first-order conservative) regridding between two
  aligned regular lat/lon grids of different resolutions, e.g. MSWEP 0.1° → 0.25°. Missing
  source cells (NaN) are left out of the weights; a target cell is NaN when less than
  ``min_coverage`` of its area has valid data.
- :func:`points_to_cells` — ERA5's 0.25° fields are defined at grid *points* (multiples of
  0.25°, 721 latitudes including the poles); each cell of the cell-centred analysis grid lies
  between four of them and takes their mean (bilinear interpolation at the cell centre);
  :func:`surrounding_points` gives the four values themselves (for categorical fields).
- :func:`conservative_weights_points` + :func:`conservative_apply` — the conservative regrid
  generalised to a source of *points* that each stand for the cell centred on them (ERA5-Land
  0.1° → 0.25°), whose cells are offset from any cell-centred :class:`~smda.geo.grid.Grid`.
- :func:`window_of_centres` — recognise cell-centre coordinates (MSWEP 0.1°, GLDAS 0.25°) as a
  window of the global cell-centred grid, with the permutations that put a field in its order.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from smda.geo.grid import Grid

__all__ = [
    "conservative",
    "conservative_apply",
    "conservative_weights",
    "conservative_weights_points",
    "points_to_cells",
    "surrounding_points",
    "window_of_centres",
]

FloatArray = npt.NDArray[np.floating]


def _overlap(
    src_lo: np.ndarray, src_hi: np.ndarray, dst_lo: np.ndarray, dst_hi: np.ndarray
) -> sp.csr_matrix:
    """Sparse matrix (n_dst, n_src) of the 1-D overlap lengths of intervals."""
    lo = np.maximum(dst_lo[:, None], src_lo[None, :])
    hi = np.minimum(dst_hi[:, None], src_hi[None, :])
    length = np.clip(hi - lo, 0.0, None)
    length[length < 1e-12] = 0.0
    return sp.csr_matrix(length)


def conservative_weights(src: Grid, dst: Grid) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Per-axis overlap matrices (lat: n_dst_lat × n_src_lat, lon: n_dst_lon × n_src_lon).

    Latitude overlaps are measured in ``sin(latitude)`` so that their products are areas on
    the sphere. The source grid must cover the target grid.
    """
    s_north = 90.0 - src.row0 * src.res
    d_north = 90.0 - dst.row0 * dst.res
    s_edges = np.sin(np.deg2rad(s_north - np.arange(src.nrows + 1) * src.res))
    d_edges = np.sin(np.deg2rad(d_north - np.arange(dst.nrows + 1) * dst.res))
    w_lat = _overlap(s_edges[1:], s_edges[:-1], d_edges[1:], d_edges[:-1])

    s_west = -180.0 + src.col0 * src.res
    d_west = -180.0 + dst.col0 * dst.res
    # Express the target's continuous longitudes in the source's frame (they may differ by 360°).
    shift = 360.0 * np.round((s_west - d_west) / 360.0) if not src.is_global else 0.0
    s_e = s_west + np.arange(src.ncols + 1) * src.res
    d_e = d_west + shift + np.arange(dst.ncols + 1) * dst.res
    if src.is_global:
        # A global source wraps: add a copy shifted by ±360° and fold it back.
        blocks = [
            _overlap(s_e[:-1] + k, s_e[1:] + k, d_e[:-1], d_e[1:]) for k in (-360.0, 0.0, 360.0)
        ]
        w_lon = (blocks[0] + blocks[1] + blocks[2]).tocsr()
    else:
        w_lon = _overlap(s_e[:-1], s_e[1:], d_e[:-1], d_e[1:])
    cover_lat = np.asarray(w_lat.sum(axis=1)).ravel() / np.diff(-d_edges)
    cover_lon = np.asarray(w_lon.sum(axis=1)).ravel() / dst.res
    if np.any(cover_lat < 1 - 1e-6) or np.any(cover_lon < 1 - 1e-6):
        raise ValueError(f"source grid {src} does not cover target grid {dst}")
    return w_lat, w_lon


def conservative(
    field: FloatArray,
    src: Grid,
    dst: Grid,
    *,
    min_coverage: float = 0.5,
    weights: tuple[sp.csr_matrix, sp.csr_matrix] | None = None,
) -> npt.NDArray[np.float32]:
    """Area-weighted mean of ``field`` (..., src lat, src lon) on each ``dst`` cell.

    Parameters
    ----------
    field:
        Values on ``src``, shape (..., src.nrows, src.ncols); NaN marks missing data.
    src, dst:
        Source and target grids; ``src`` must cover ``dst``.
    min_coverage:
        Fraction of a target cell's area that must have valid source data, else NaN.
    weights:
        Precomputed :func:`conservative_weights` (for repeated calls).

    Returns
    -------
    float32 array (..., dst.nrows, dst.ncols), in the units of ``field``.
    """
    w_lat, w_lon = weights if weights is not None else conservative_weights(src, dst)
    data = np.asarray(field, dtype=np.float64)
    lead = data.shape[:-2]
    data = data.reshape((-1, *data.shape[-2:]))
    out = np.empty((data.shape[0], dst.nrows, dst.ncols), dtype=np.float32)
    w_lon_t = w_lon.T.tocsr()
    full = np.asarray(w_lat @ np.ones(src.shape) @ w_lon_t)
    for k, layer in enumerate(data):
        valid = np.isfinite(layer)
        num = w_lat @ np.where(valid, layer, 0.0) @ w_lon_t
        den = w_lat @ valid.astype(np.float64) @ w_lon_t
        num, den = np.asarray(num), np.asarray(den)
        with np.errstate(invalid="ignore", divide="ignore"):
            res = np.where(den >= min_coverage * full, num / den, np.nan)
        out[k] = res
    return out.reshape((*lead, dst.nrows, dst.ncols))


def _quad_index(
    lat: FloatArray, lon: FloatArray, dst: Grid
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Positions in ``lat``/``lon`` of the north and south rows and the west and east columns
    of the four points around each ``dst`` cell centre (see :func:`points_to_cells`)."""
    res = dst.res
    lat = np.asarray(lat, dtype=np.float64)
    lon = np.asarray(lon, dtype=np.float64)
    lat_key = np.round(lat / res).astype(np.int64)
    lon_key = np.round(((lon + 180.0) % 360.0 - 180.0) / res).astype(np.int64)
    n_lon = round(360.0 / res)
    lat_pos = {int(k): i for i, k in enumerate(lat_key)}
    lon_pos = {int(k) % n_lon: i for i, k in enumerate(lon_key)}
    north_key = np.round((dst.lats + res / 2) / res).astype(np.int64)
    west_key = np.round((dst.lons - res / 2) / res).astype(np.int64)
    try:
        rn = np.array([lat_pos[int(k)] for k in north_key], dtype=np.intp)
        rs = np.array([lat_pos[int(k) - 1] for k in north_key], dtype=np.intp)
        cw = np.array([lon_pos[int(k) % n_lon] for k in west_key], dtype=np.intp)
        ce = np.array([lon_pos[(int(k) + 1) % n_lon] for k in west_key], dtype=np.intp)
    except KeyError as exc:
        raise ValueError(
            f"point field does not cover grid {dst}: missing point index {exc}"
        ) from exc
    return rn, rs, cw, ce


def points_to_cells(
    field: FloatArray, lat: FloatArray, lon: FloatArray, dst: Grid
) -> npt.NDArray[np.float32]:
    """Mean of the four grid points around each ``dst`` cell centre.

    Parameters
    ----------
    field:
        Values (..., lat, lon) at points spaced ``dst.res`` apart, latitudes at multiples of
        ``dst.res`` (either order), longitudes in any convention (0…360 or −180…180).
    lat, lon:
        1-D point coordinates in degrees.
    dst:
        Target cell-centred grid; every cell's four neighbouring points must be present.

    Returns
    -------
    float32 array (..., dst.nrows, dst.ncols); NaN if any of the four points is NaN.
    """
    rn, rs, cw, ce = _quad_index(lat, lon, dst)
    data = np.asarray(field)
    north, south = data.take(rn, axis=-2), data.take(rs, axis=-2)  # rows, then columns: one
    quad = (  # gather per axis is cheaper than a broadcast (rows × columns) fancy index
        north.take(cw, axis=-1).astype(np.float64)
        + north.take(ce, axis=-1)
        + south.take(cw, axis=-1)
        + south.take(ce, axis=-1)
    )
    return np.asarray(quad / 4.0, dtype=np.float32)


def surrounding_points(
    field: FloatArray, lat: FloatArray, lon: FloatArray, dst: Grid
) -> npt.NDArray[np.generic]:
    """The values of the four grid points around each ``dst`` cell centre.

    Same inputs as :func:`points_to_cells`. Returns an array (4, ..., dst.nrows, dst.ncols) in
    the dtype of ``field``, ordered north-west, north-east, south-west, south-east; use it for
    statistics other than the mean (e.g. the dominant class of a categorical field).
    """
    rn, rs, cw, ce = _quad_index(lat, lon, dst)
    data = np.asarray(field)
    return np.stack(
        [data[..., r[:, None], c[None, :]] for r, c in ((rn, cw), (rn, ce), (rs, cw), (rs, ce))]
    )


def window_of_centres(
    lat: FloatArray, lon: FloatArray, res: float
) -> tuple[Grid, npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """The window of the global ``res``° cell-centred grid formed by cell-centre coordinates.

    Parameters
    ----------
    lat, lon:
        1-D cell-centre coordinates in degrees, in any order; longitudes in any convention.
        Together they must form a contiguous window (columns may wrap across the antimeridian).
    res:
        Cell size in degrees (0.1 for MSWEP, 0.25 for GLDAS).

    Returns
    -------
    ``(grid, lat_order, lon_order)``: ``field[lat_order][:, lon_order]`` (a field indexed like
    ``lat`` × ``lon``) is the field on ``grid``, north → south and west → east.

    Raises
    ------
    ValueError
        If a coordinate is not a cell centre of that grid, repeats, or leaves a gap.
    """
    n_lat, n_lon = round(180.0 / res), round(360.0 / res)
    row_f = (90.0 - np.asarray(lat, dtype=np.float64)) / res - 0.5
    wrapped = (np.asarray(lon, dtype=np.float64) + 180.0) % 360.0 - 180.0
    col_f = (wrapped + 180.0) / res - 0.5
    rows, cols = np.round(row_f).astype(np.intp), np.round(col_f).astype(np.intp) % n_lon
    if np.any(np.abs(row_f - np.round(row_f)) > 1e-4) or np.any(
        np.abs(col_f - np.round(col_f)) > 1e-4
    ):
        raise ValueError(f"coordinates are not the cell centres of the global {res}° grid")
    if rows.size == 0 or cols.size == 0 or rows.min() < 0 or rows.max() >= n_lat:
        raise ValueError(f"latitudes outside the global {res}° grid or empty")
    lat_order = np.argsort(rows, kind="stable")
    srow = rows[lat_order]
    if np.any(np.diff(srow) != 1):
        raise ValueError(f"latitudes of the {res}° field repeat or leave a gap")
    scol = np.sort(cols)
    steps = np.diff(scol)
    if np.any(steps == 0):
        raise ValueError(f"longitudes of the {res}° field repeat")
    gaps = np.flatnonzero(steps != 1)
    if gaps.size > 1:
        raise ValueError(f"longitudes of the {res}° field leave a gap")
    col0 = int(scol[gaps[0] + 1]) if gaps.size else int(scol[0])
    if gaps.size and (scol[0] + n_lon - scol[-1]) != 1:
        raise ValueError(f"longitudes of the {res}° field leave a gap")
    lon_order = np.argsort((cols - col0) % n_lon, kind="stable")
    grid = Grid(res, int(srow[0]), col0, int(srow.size), int(cols.size))
    return grid, lat_order.astype(np.intp), lon_order.astype(np.intp)


def _overlap_sorted(
    src_lo: np.ndarray, src_hi: np.ndarray, dst_lo: np.ndarray, dst_hi: np.ndarray, n_src: int
) -> sp.csr_matrix:
    """Sparse (n_dst, n_src) overlap lengths of 1-D intervals, built in O(n).

    ``src_lo``/``src_hi`` may hold more intervals than ``n_src`` (shifted copies): interval
    ``i`` contributes to column ``i % n_src``. Source intervals must not overlap each other.
    """
    order = np.argsort(src_lo, kind="stable")
    lo_s, hi_s = src_lo[order], src_hi[order]
    if np.any(hi_s[:-1] > lo_s[1:] + 1e-9):
        raise ValueError("source cells overlap: repeated coordinates?")
    first = np.searchsorted(hi_s, dst_lo, side="right")
    stop = np.searchsorted(lo_s, dst_hi, side="left")
    width = int(np.max(stop - first, initial=0))
    rows, cols, vals = [], [], []
    for j in range(width):
        pos = first + j
        ok = pos < stop
        d = np.flatnonzero(ok)
        s = pos[ok]
        length = np.minimum(dst_hi[d], hi_s[s]) - np.maximum(dst_lo[d], lo_s[s])
        keep = length > 1e-12
        rows.append(d[keep])
        cols.append(order[s[keep]] % n_src)
        vals.append(length[keep])
    matrix = sp.coo_matrix(
        (
            np.concatenate(vals or [np.zeros(0)]),
            (
                np.concatenate(rows or [np.zeros(0, int)]),
                np.concatenate(cols or [np.zeros(0, int)]),
            ),
        ),
        shape=(dst_lo.size, n_src),
    )
    return matrix.tocsr()


def conservative_weights_points(
    lat: FloatArray, lon: FloatArray, dst: Grid, *, res: float
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Overlap matrices for a source of *points*, each the centre of a ``res``° cell.

    ERA5-Land's 0.1° fields are values at points (multiples of 0.1°, 1801 latitudes including
    the poles); each point stands for the ``res`` × ``res`` cell centred on it (clipped at the
    poles). Returns ``(w_lat, w_lon)`` like :func:`conservative_weights`, with columns in the
    order of ``lat`` and ``lon`` (any order, any longitude convention, wrapping allowed).

    Raises
    ------
    ValueError
        If the points' cells do not cover ``dst`` or a coordinate repeats.
    """
    half = res / 2.0
    la = np.asarray(lat, dtype=np.float64)
    s_lo = np.sin(np.deg2rad(np.clip(la - half, -90.0, 90.0)))
    s_hi = np.sin(np.deg2rad(np.clip(la + half, -90.0, 90.0)))
    d_n = np.sin(np.deg2rad(dst.lats + dst.res / 2))
    d_s = np.sin(np.deg2rad(dst.lats - dst.res / 2))
    w_lat = _overlap_sorted(s_lo, s_hi, d_s, d_n, la.size)

    lo = (np.asarray(lon, dtype=np.float64) + 180.0) % 360.0 - 180.0
    d_w = dst.lons_continuous - dst.res / 2
    shifts = np.array([-360.0, 0.0, 360.0])
    centres = (lo[None, :] + shifts[:, None]).ravel()
    w_lon = _overlap_sorted(centres - half, centres + half, d_w, d_w + dst.res, lo.size)

    cover_lat = np.asarray(w_lat.sum(axis=1)).ravel() / (d_n - d_s)
    cover_lon = np.asarray(w_lon.sum(axis=1)).ravel() / dst.res
    if np.any(cover_lat < 1 - 1e-6) or np.any(cover_lon < 1 - 1e-6):
        raise ValueError(f"the {res}° points do not cover target grid {dst}")
    return w_lat, w_lon


def conservative_apply(
    field: FloatArray,
    weights: tuple[sp.csr_matrix, sp.csr_matrix],
    *,
    min_coverage: float = 0.5,
) -> npt.NDArray[np.float32]:
    """Area-weighted mean of ``field`` (..., n_src_lat, n_src_lon) with precomputed overlaps.

    The general form of :func:`conservative`: ``weights`` come from
    :func:`conservative_weights` or :func:`conservative_weights_points` (their column order
    is the order of ``field``'s last two axes). NaN marks missing data; a target cell with
    less than ``min_coverage`` of its area valid is NaN. Returns float32 (..., dst lat, dst lon).
    """
    w_lat, w_lon = weights
    w_lon_t = w_lon.T.tocsr()
    full = np.outer(np.asarray(w_lat.sum(axis=1)).ravel(), np.asarray(w_lon.sum(axis=1)).ravel())
    data = np.asarray(field)
    lead = data.shape[:-2]
    data = data.reshape((-1, *data.shape[-2:]))
    out = np.empty((data.shape[0], *full.shape), dtype=np.float32)
    for k, layer in enumerate(data):
        valid = np.isfinite(layer)
        num = np.asarray(w_lat @ np.where(valid, layer, 0.0).astype(np.float64) @ w_lon_t)
        den = np.asarray(w_lat @ valid.astype(np.float64) @ w_lon_t)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[k] = np.where(den >= min_coverage * full * (1 - 1e-9), num / den, np.nan)
    return out.reshape((*lead, *full.shape))
