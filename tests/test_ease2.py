"""EASE-Grid 2.0 geometry, checked against the real SPL3SMP granule's coordinates."""

from __future__ import annotations

import numpy as np
import pytest

from smda.geo.ease2 import M09, M36
from smda.geo.grid import BBox


def test_grid_shapes() -> None:
    assert M36.shape == (406, 964)
    assert M09.shape == (1624, 3856)
    assert M09.res * 4 == pytest.approx(M36.res, rel=1e-12)


def test_m36_corner_and_rows_match_spl3smp() -> None:
    # STRUCTURE.md §1.1: M36 (0,0) → (−179.813°, 83.632°); rows 0/100/203/405; cols 0/963
    lat, lon = M36.lat_lon(0, 0)
    assert float(lat) == pytest.approx(83.632, abs=1e-3)
    assert float(lon) == pytest.approx(-179.813, abs=1e-3)
    rows = M36.row_lats([0, 100, 203, 405])
    np.testing.assert_allclose(rows, [83.63197, 30.311827, -0.14122179, -83.63197], atol=2e-6)
    np.testing.assert_allclose(M36.col_lons([0, 963]), [-179.81328, 179.81328], atol=2e-6)


def test_latitude_depends_on_row_only() -> None:
    lat, lon = M09.lat_lon(np.arange(0, 1624, 200)[:, None], np.arange(0, 3856, 500)[None, :])
    assert np.allclose(lat, lat[:, :1])
    assert np.allclose(lon, lon[:1, :])


def test_row_col_round_trip_and_validity() -> None:
    rows = np.array([0, 100, 203, 405])
    cols = np.array([0, 200, 500, 963])
    lat, lon = M36.lat_lon(rows, cols)
    r, c, ok = M36.row_col(lat, lon)
    assert ok.all()
    np.testing.assert_array_equal(r, rows)
    np.testing.assert_array_equal(c, cols)
    # a real retrieval: soil_moisture[100, 200] is at (30.311827, −105.12448)
    r, c, ok = M36.row_col(30.311827, -105.12448)
    assert (int(r), int(c), bool(ok)) == (100, 200, True)
    # beyond the grid's latitude range, and non-finite input
    _, _, ok = M36.row_col(np.array([89.0, np.nan]), np.array([0.0, 0.0]))
    assert not ok.any()
    # longitudes in 0…360 are accepted
    _, c360, _ = M36.row_col(30.311827, 360.0 - 105.12448)
    assert int(c360) == 200


def test_rows_cols_in_bbox() -> None:
    rows, cols = M09.rows_cols_in_bbox(BBox(-105, 30, -95, 40))
    lat, lon = M09.row_lats(rows), M09.col_lons(cols)
    assert lat.min() >= 30 and lat.max() <= 40
    assert lon.min() >= -105 and lon.max() <= -95
    assert np.all(np.diff(rows) == 1) and np.all(np.diff(cols) == 1)
    # one more row/column on either side falls outside
    assert M09.row_lats([rows[0] - 1])[0] > 40 and M09.row_lats([rows[-1] + 1])[0] < 30
    assert M09.col_lons([cols[0] - 1])[0] < -105 and M09.col_lons([cols[-1] + 1])[0] > -95


def test_rows_cols_in_bbox_across_antimeridian() -> None:
    rows, cols = M36.rows_cols_in_bbox(BBox(170, -10, -170, 10))
    lon = M36.col_lons(cols)
    assert rows.size > 0
    # west → east: 170…179.8 then −179.8…−170, a contiguous run of wrapped columns
    assert lon[0] > 170 and lon[-1] < -170
    steps = np.diff(cols) % M36.ncols
    assert np.all(steps == 1)
    assert np.all((lon >= 170) | (lon <= -170))
