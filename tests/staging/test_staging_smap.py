"""SMAP L3 quality filtering and EASE-Grid 2.0 → 0.25° binning."""

from __future__ import annotations

import io
import math
import time
from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smda.geo.ease2 import M09, M36, EaseGrid
from smda.geo.grid import GLOBAL_025, BBox, Grid
from smda.ingest.staging.smap import SmapBinIndex, bin_smap

FROZEN_WATER_SNOW = (1 << 0) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8)


def _random_passes(ease: EaseGrid, seed: int) -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = {}
    for name in ("AM", "PM"):
        sm = rng.uniform(0.0, 0.6, ease.shape).astype(np.float32)
        sm[rng.random(ease.shape) < 0.2] = -9999.0
        qual = rng.choice(np.array([0, 0, 0, 1, 5, 65534], dtype=np.uint16), ease.shape)
        surface = rng.choice(
            np.array([0, 0, 4, 1, 32, 64, 128, 256, 512, 1024, 65534], dtype=np.uint16), ease.shape
        )
        out[name] = {"soil_moisture": sm, "retrieval_qual_flag": qual, "surface_flag": surface}
    return out


def _brute_force(
    passes: dict[str, dict[str, np.ndarray]], ease: EaseGrid, grid: Grid, bbox: BBox
) -> tuple[dict[tuple[int, int], float], dict[str, dict[tuple[int, int], int]]]:
    """Reference: loop over the EASE cells around ``bbox``, one at a time."""
    margin = 1.0
    wide = BBox(
        (bbox.west - margin + 180) % 360 - 180,
        max(bbox.south - margin, -90),
        (bbox.east + margin + 180) % 360 - 180,
        min(bbox.north + margin, 90),
    )
    rows, cols = ease.rows_cols_in_bbox(wide)
    sums: dict[tuple[int, int], float] = defaultdict(float)
    counts: dict[str, dict[tuple[int, int], int]] = {p: defaultdict(int) for p in passes}
    for r in rows:
        for c in cols:
            lat, lon = (float(v) for v in ease.lat_lon(r, c))
            i = math.floor((90.0 - lat) / 0.25) - grid.row0
            j = (math.floor((lon + 180.0) / 0.25) % 1440 - grid.col0) % 1440
            if not (0 <= i < grid.nrows and j < grid.ncols):
                continue
            for name, p in passes.items():
                v = float(p["soil_moisture"][r, c])
                q = int(p["retrieval_qual_flag"][r, c])
                s = int(p["surface_flag"][r, c])
                if q == 65534 or q & 1 or s == 65534 or s & FROZEN_WATER_SNOW:
                    continue
                if not np.float32(0.02) <= np.float32(v) <= np.float32(0.5):
                    continue
                sums[(i, j)] += v
                counts[name][(i, j)] += 1
    return sums, counts


def _assert_equal_to_reference(
    passes: dict[str, dict[str, np.ndarray]], ease: EaseGrid, bbox: BBox
) -> None:
    grid = GLOBAL_025.subset(bbox)
    out = bin_smap(passes, SmapBinIndex.build(ease, grid))
    sums, counts = _brute_force(passes, ease, grid, bbox)
    expected_am = np.zeros(grid.shape, dtype=int)
    expected_pm = np.zeros(grid.shape, dtype=int)
    for (i, j), n in counts["AM"].items():
        expected_am[i, j] = n
    for (i, j), n in counts["PM"].items():
        expected_pm[i, j] = n
    np.testing.assert_array_equal(out["count_am"], expected_am)
    np.testing.assert_array_equal(out["count_pm"], expected_pm)
    np.testing.assert_array_equal(out["count"], expected_am + expected_pm)
    expected = np.full(grid.shape, np.nan)
    for (i, j), total in sums.items():
        if expected_am[i, j] + expected_pm[i, j]:
            expected[i, j] = total / (expected_am[i, j] + expected_pm[i, j])
    np.testing.assert_allclose(out["soil_moisture"], expected, rtol=1e-6)


def test_m09_binning_equals_brute_force_across_the_antimeridian() -> None:
    passes = _random_passes(M09, seed=1)
    _assert_equal_to_reference(passes, M09, BBox(179.25, 59.5, -179.5, 61.0))


@settings(max_examples=40, deadline=None)
@given(
    west=st.floats(-180, 179.5),
    south=st.floats(-84, 80),
    width=st.floats(0.5, 4),
    height=st.floats(0.5, 3),
)
def test_m36_binning_equals_brute_force(
    west: float, south: float, width: float, height: float
) -> None:
    east = (west + width + 180.0) % 360.0 - 180.0
    bbox = BBox(west, south, east, min(south + height, 85.0))
    _assert_equal_to_reference(_M36_PASSES, M36, bbox)


_M36_PASSES = _random_passes(M36, seed=2)


def _single_cell_pass(values: list[tuple[float, int, int]]) -> dict[str, np.ndarray]:
    """A full M36 pass whose first retrievals (row 100, cols 200…) carry ``values``."""
    sm = np.full(M36.shape, -9999.0, dtype=np.float32)
    qual = np.full(M36.shape, 65534, dtype=np.uint16)
    surf = np.full(M36.shape, 65534, dtype=np.uint16)
    for k, (v, q, s) in enumerate(values):
        sm[100, 200 + 3 * k], qual[100, 200 + 3 * k], surf[100, 200 + 3 * k] = v, q, s
    return {"soil_moisture": sm, "retrieval_qual_flag": qual, "surface_flag": surf}


def test_quality_frozen_snow_water_and_range_filtering() -> None:
    cases = [
        (0.20, 0, 0),  # used
        (0.30, 0, 1 << 2),  # coastal proximity: used
        (0.25, 0, 1 << 9),  # mountainous: used
        (0.40, 1, 0),  # not recommended
        (0.40, 5, 0),  # not recommended, not successful
        (0.40, 0, 1 << 7),  # frozen (radiometer) though recommended
        (0.40, 0, 1 << 8),  # frozen (model)
        (0.40, 0, 1 << 5),  # snow
        (0.40, 0, 1 << 0),  # static water
        (0.60, 0, 0),  # above valid_max
        (0.01, 0, 0),  # below valid_min
        (np.nan, 0, 0),  # NaN fill
        (0.40, 65534, 0),  # flag fill
    ]
    _, lons = M36.lat_lon(100, np.arange(200, 200 + 3 * len(cases), 3))
    grid = GLOBAL_025.subset(BBox(float(lons.min()) - 1, 29, float(lons.max()) + 1, 32))
    index = SmapBinIndex.build(M36, grid)
    out = bin_smap({"AM": _single_cell_pass(cases)}, index)
    assert int(out["count"].sum()) == 3
    used = out["soil_moisture"].values[np.isfinite(out["soil_moisture"].values)]
    np.testing.assert_allclose(np.sort(used), [0.2, 0.25, 0.3], rtol=1e-6)
    assert int(out["count_pm"].sum()) == 0
    # the filters are parameters
    loose = bin_smap(
        {"AM": _single_cell_pass(cases)}, index, surface_bits=(0, 5), valid_range=(0.0, 1.0)
    )
    assert int(loose["count"].sum()) == 3 + 2 + 1 + 1  # frozen ×2, the 0.6 and 0.01 values


def test_am_pm_combination() -> None:
    grid = GLOBAL_025.subset(BBox(-106, 29, -104, 32))
    index = SmapBinIndex.build(M36, grid)
    am = _single_cell_pass([(0.10, 0, 0)])
    pm = _single_cell_pass([(0.30, 0, 0)])
    pm_name = {f"{k}_pm": v for k, v in pm.items()}  # the product's PM names work too
    mean = bin_smap({"AM": am, "PM": pm_name}, index)
    cell = np.unravel_index(int(np.nanargmax(mean["count"].values)), grid.shape)
    assert float(mean["soil_moisture"][cell]) == pytest.approx(0.2)
    assert (int(mean["count"][cell]), int(mean["count_am"][cell]), int(mean["count_pm"][cell])) == (
        2,
        1,
        1,
    )
    first = bin_smap({"AM": am, "PM": pm}, index, combine="am_first")
    assert float(first["soil_moisture"][cell]) == pytest.approx(0.1)
    assert int(first["count"][cell]) == 1
    only_pm = bin_smap({"PM": pm}, index, combine="am_first")
    assert float(only_pm["soil_moisture"][cell]) == pytest.approx(0.3)
    assert only_pm["count_am"].dtype == np.uint16 and int(only_pm["count_am"].sum()) == 0
    assert mean["soil_moisture"].attrs["units"] == "m3 m-3"


def test_twin_retrievals_across_the_antimeridian() -> None:
    from smda_twin.world import World, WorldSpec

    region = BBox(177, 64, -177, 67)
    world = World(WorldSpec(seed=7, region=region, epoch=date(2024, 1, 1), spinup_days=5))
    summer = world.smap_l3e(date(2024, 7, 5))
    passes = {"AM": dict(summer.am), "PM": dict(summer.pm)}
    _assert_equal_to_reference(passes, M09, region)
    out = bin_smap(passes, SmapBinIndex.build(M09, world.grid))
    assert int(out["count"].sum()) > 500
    assert float(out["soil_moisture"].min()) >= np.float32(0.02)
    # a winter day: everything frozen/snow-covered, nothing recommended → no retrievals
    winter = world.smap_l3e(date(2024, 3, 5))
    frozen = bin_smap({"AM": winter.am, "PM": winter.pm}, SmapBinIndex.build(M09, world.grid))
    assert int(frozen["count"].sum()) == 0 and bool(frozen["soil_moisture"].isnull().all())


def test_real_spl3smp_granule(real_data: Path) -> None:
    h5py = pytest.importorskip("h5py")
    path = real_data / "smap/SPL3SMP/2015.04.01/SMAP_L3_SM_P_20150401_R13080_001.h5"
    with h5py.File(path) as f:
        g = f["Soil_Moisture_Retrieval_Data"]
        one: dict[str, Any] = {
            k: g[k][:] for k in ("soil_moisture", "retrieval_qual_flag", "surface_flag")
        }
    index = SmapBinIndex.build(M36, GLOBAL_025)
    everything = bin_smap({"AM": one}, index, surface_bits=(), valid_range=(0.0, 1.0))
    assert int(everything["count"].sum()) == 20878  # recommended (bit 0 clear), STRUCTURE.md
    sm = one["soil_moisture"]
    recommended = (sm != -9999) & ((one["retrieval_qual_flag"] & 1) == 0)
    total = float(np.nansum(everything["soil_moisture"].values * everything["count"].values))
    assert total == pytest.approx(float(sm[recommended].astype(float).sum()), rel=1e-6)
    default = bin_smap({"AM": one}, index)
    assert int(default["count"].sum()) < 20878
    # soil_moisture[100, 200] = 0.042025514 at (30.311827, −105.12448) → cell (238, 299)
    assert float(default["soil_moisture"][238, 299]) == pytest.approx(0.042025514, rel=1e-6)


def test_index_is_cached_and_serialisable() -> None:
    grid = GLOBAL_025.subset(BBox(170, -10, -170, 10))
    index = SmapBinIndex.build(M09, grid)
    assert SmapBinIndex.build(M09, grid) is index
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **index.as_arrays())
    assert buffer.tell() < 50_000
    buffer.seek(0)
    with np.load(buffer) as arrays:
        back = SmapBinIndex.from_arrays(dict(arrays))
    assert back.ease == M09 and back.grid == grid
    np.testing.assert_array_equal(back.target, index.target)
    with pytest.raises(ValueError, match="shape"):
        bin_smap({"AM": _single_cell_pass([])}, index)


def test_global_m09_binning_is_fast() -> None:
    index = SmapBinIndex.build(M09, GLOBAL_025)
    assert index.size == M09.nrows * M09.ncols
    passes = _random_passes(M09, seed=3)
    start = time.perf_counter()
    out = bin_smap(passes, index)
    elapsed = time.perf_counter() - start
    assert out["soil_moisture"].shape == (720, 1440)
    assert elapsed < 3.0  # ≈ 0.2 s on a 2-core machine; generous for CI noise


def test_a_band_of_rows_bins_like_the_full_grid() -> None:
    grid = GLOBAL_025.subset(BBox(-105, 30, -95, 40))
    index = SmapBinIndex.build(M09, grid)
    band = index.row_band
    assert band.start <= int(index.rows.min()) and band.stop == int(index.rows.max()) + 1
    passes = _random_passes(M09, seed=11)
    full = bin_smap(passes, index)
    cut = {
        name: {k: v[band.start - 3 : band.stop + 2] for k, v in one.items()}
        for name, one in passes.items()
    }
    banded = bin_smap(cut, index, first_row=band.start - 3)
    for name in full.data_vars:
        np.testing.assert_array_equal(banded[name].values, full[name].values)
    late = {k: {n: a[4:] for n, a in v.items()} for k, v in cut.items()}  # from band.start + 1
    with pytest.raises(ValueError, match="band"):  # the region's first row is missing
        bin_smap(late, index, first_row=band.start + 1)
