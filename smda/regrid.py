"""Regridding between the grids smda meets, without I/O.

- :func:`conservative` — area-weighted (first-order conservative) regridding between two
  aligned regular lat/lon grids of different resolutions, e.g. MSWEP 0.1° → 0.25°. Missing
  source cells (NaN) are left out of the weights; a target cell is NaN when less than
  ``min_coverage`` of its area has valid data.
- :func:`points_to_cells` — ERA5's 0.25° fields are defined at grid *points* (multiples of
  0.25°, 721 latitudes including the poles); each cell of the cell-centred analysis grid lies
  between four of them and takes their mean (bilinear interpolation at the cell centre).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from smda.grid import Grid

__all__ = ["conservative", "conservative_weights", "points_to_cells"]

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
        rn = np.array([lat_pos[int(k)] for k in north_key])
        rs = np.array([lat_pos[int(k) - 1] for k in north_key])
        cw = np.array([lon_pos[int(k) % n_lon] for k in west_key])
        ce = np.array([lon_pos[(int(k) + 1) % n_lon] for k in west_key])
    except KeyError as exc:
        raise ValueError(
            f"point field does not cover grid {dst}: missing point index {exc}"
        ) from exc
    data = np.asarray(field)
    quad = (
        data[..., rn[:, None], cw[None, :]].astype(np.float64)
        + data[..., rn[:, None], ce[None, :]]
        + data[..., rs[:, None], cw[None, :]]
        + data[..., rs[:, None], ce[None, :]]
    )
    return np.asarray(quad / 4.0, dtype=np.float32)
