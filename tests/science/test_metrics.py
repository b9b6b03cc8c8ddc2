"""Validation metrics: pytesmo's definitions and values, invariants, station matching."""

from __future__ import annotations

import warnings
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from pytesmo import metrics as pm

from smda.geo.grid import GLOBAL_025, BBox
from smda.ingest.readers.ismn import read_ismn
from smda.science.metrics import bias, match_stations, pearson_r, rmsd, score, summarise, ubrmsd
from smda_twin.world import World, WorldSpec

HAWAII = Path("colocated/hawaii_qa4sm")
SMAP_AM = HAWAII / "ts_cell0165/SMAP_L3/SMAP_V8_AM/netcdf/0165.nc"
ERA5_LAND = HAWAII / "ts_cell0165/ERA5_LAND/ERA5_LAND_V20190904/0165.nc"


def _pytesmo(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok].astype(np.float64), y[ok].astype(np.float64)  # pytesmo's kernels want float64
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # pm.pearsonr is deprecated
        r, p = pm.pearsonr(x, y)
    return {"bias": pm.bias(x, y), "rmsd": pm.rmsd(x, y), "ubrmsd": pm.ubrmsd(x, y), "r": r, "p": p}


def _assert_matches_pytesmo(x: np.ndarray, y: np.ndarray, rtol: float = 1e-10) -> None:
    expected = _pytesmo(x, y)
    got = score(x, y, min_n=1).as_dict()
    for name, value in expected.items():
        np.testing.assert_allclose(got[name], value, rtol=rtol, atol=1e-14, err_msg=name)


# -- pytesmo's definitions ------------------------------------------------------------------------
def test_pytesmo_examples() -> None:
    """SCIENCE.md §4 (pytesmo's own test values)."""
    x = np.arange(10, dtype=float)
    y = x + 2
    assert bias(x, y) == pytest.approx(-2.0)
    assert rmsd(x, y) == pytest.approx(2.0)
    assert ubrmsd(x, y) == pytest.approx(0.0, abs=1e-12)
    y[-1] = 100.0
    assert bias(x, y) == pytest.approx(-10.9)
    assert rmsd(x, y) == pytest.approx(28.8392, abs=1e-4)
    assert ubrmsd(x, y) == pytest.approx(26.7)


@pytest.mark.parametrize("seed", range(8))
def test_random_series_match_pytesmo(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 2000))
    x = rng.normal(0.25, 0.08, n)
    y = rng.uniform(-1, 1) * x + rng.normal(rng.uniform(-0.2, 0.2), rng.uniform(0.01, 0.2), n)
    x[rng.random(n) < 0.2] = np.nan
    y[rng.random(n) < 0.1] = np.nan
    _assert_matches_pytesmo(x, y)
    ok = np.isfinite(x) & np.isfinite(y)
    r, p = scipy.stats.pearsonr(x[ok], y[ok])
    np.testing.assert_allclose(pearson_r(x, y), (r, p), rtol=1e-10)


def test_vectorised_along_the_last_axis() -> None:
    rng = np.random.default_rng(11)
    x = rng.normal(size=(3, 4, 200))
    y = 0.5 * x + rng.normal(size=(3, 4, 200))
    x[rng.random(x.shape) < 0.3] = np.nan
    result = score(x, y)
    assert result.r.shape == (3, 4) and result.n.dtype == np.int64
    for i, j in np.ndindex(3, 4):
        single = score(x[i, j], y[i, j]).as_dict()
        for name in ("n", "bias", "rmsd", "ubrmsd", "r", "p"):
            np.testing.assert_allclose(getattr(result, name)[i, j], single[name], rtol=1e-12)
    # broadcasting: one reference series against many
    np.testing.assert_allclose(rmsd(x, y[0, 0]), rmsd(x, np.broadcast_to(y[0, 0], x.shape)))


def test_missing_and_undefined() -> None:
    x = np.array([1.0, np.nan, 3.0, 4.0])
    y = np.array([2.0, 5.0, np.nan, 6.0])
    assert bias(x, y) == pytest.approx(((1 + 4) - (2 + 6)) / 2)  # common samples only
    assert score(x, y, min_n=2).n == 2
    few = score(x, y, min_n=3)
    assert few.n == 2 and np.isnan([few.bias, few.rmsd, few.ubrmsd, few.r, few.p]).all()
    none = np.full(4, np.nan)
    assert np.isnan([bias(x, none), rmsd(x, none), ubrmsd(x, none), *pearson_r(x, none)]).all()
    assert np.isnan(pearson_r(x, np.ones(4))[0])  # constant series: R undefined
    r, p = pearson_r(np.array([1.0, 2.0]), np.array([3.0, 1.0]))
    assert (r, p) == (-1.0, 1.0)  # two samples, as scipy
    with pytest.raises(ValueError, match="series"):
        bias(1.0, 2.0)


# -- invariants (hypothesis) ----------------------------------------------------------------------
finite = st.floats(-1.0, 1.0, allow_nan=False)


@settings(max_examples=80, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(3, 300),
    offset=st.floats(-5.0, 5.0),
    scale=st.floats(0.1, 10.0),
)
def test_metric_invariants(seed: int, n: int, offset: float, scale: float) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.3, 0.1, n)
    y = rng.uniform(-1, 1) * x + rng.normal(0, rng.uniform(0.001, 0.2), n)
    x[3:][rng.random(n - 3) < 0.1] = np.nan  # missing values, but ≥ 3 common samples
    # symmetry (bias antisymmetric)
    assert bias(x, y) == pytest.approx(-bias(y, x), abs=1e-12)
    assert rmsd(x, y) == pytest.approx(rmsd(y, x), rel=1e-12)
    assert ubrmsd(x, y) == pytest.approx(ubrmsd(y, x), rel=1e-12, abs=1e-15)
    np.testing.assert_allclose(pearson_r(x, y), pearson_r(y, x), rtol=1e-12, atol=1e-15)
    # decomposition
    b, d, u = bias(x, y), rmsd(x, y), ubrmsd(x, y)
    assert u <= d * (1 + 1e-12)
    assert u**2 == pytest.approx(d**2 - b**2, abs=1e-12)
    # an offset changes only the bias; R ignores any positive affine change
    assert ubrmsd(x + offset, y) == pytest.approx(u, rel=1e-9, abs=1e-12)
    assert bias(x + offset, y) == pytest.approx(b + offset, abs=1e-9)
    assert pearson_r(offset + scale * x, y)[0] == pytest.approx(pearson_r(x, y)[0], abs=1e-9)
    assert rmsd(x, x) == 0.0 and pearson_r(x, x)[0] == pytest.approx(1.0)


# -- real data: the Hawaii matched series ---------------------------------------------------------
def _daily(path: Path, gpi: int, variable: str) -> pd.Series:
    with xr.open_dataset(path) as ds:
        i = int(np.flatnonzero(ds["location_id"].values == gpi)[0])
        series = ds[variable].isel(locations=i).to_series()
    return series.groupby(series.index.floor("D")).mean().loc["2017-01-01":"2018-12-31"]


@pytest.fixture(scope="module")
def hawaii(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """STRUCTURE.md §5.2: the real ISMN stations (G flag, daily means of any count), SMAP V8 AM
    and ERA5-Land daily at the points nearest COSMOS SilverSword, 2017–2018."""
    stations = read_ismn(
        real_data / HAWAII / "ismn_ceop",
        workdir=tmp_path_factory.mktemp("ismn"),
        max_depth=0.25,
        min_count=1,
    )
    return {
        "stations": stations,
        "smap": _daily(real_data / SMAP_AM, 261309, "soil_moisture"),
        "era5land": _daily(real_data / ERA5_LAND, 2529246, "swvl1"),
    }


def test_real_hawaii_matched_series(hawaii: dict[str, object]) -> None:
    stations = hawaii["stations"]
    assert isinstance(stations, list)
    cosmos = next(s for s in stations if s.network == "COSMOS")
    frame = pd.concat(
        {"ismn": cosmos.soil_moisture, "smap": hawaii["smap"], "era5land": hawaii["era5land"]},
        axis=1,
        sort=True,
    ).loc["2017-01-01":"2018-12-31"]
    matched = frame.dropna()
    assert len(matched) == 247
    ismn, smap, era5land = (matched[c].to_numpy() for c in ("ismn", "smap", "era5land"))
    for x, y, r in ((ismn, smap, 0.7854), (ismn, era5land, 0.7128), (smap, era5land, 0.7003)):
        assert pearson_r(x, y)[0] == pytest.approx(r, abs=5e-5)
        _assert_matches_pytesmo(x, y)
    # NaN-aware: the unmatched frame gives the pairwise figures over each pair's common days
    _assert_matches_pytesmo(frame["smap"].to_numpy(), frame["ismn"].to_numpy())


def _grid_field(series: pd.Series, bbox: BBox) -> xr.DataArray:
    """A (time, lat, lon) field on the 0.25° grid over ``bbox``, each cell a shifted copy of
    ``series`` (cell k adds 0.01·k), so a station's cell can be recognised by its bias."""
    grid = GLOBAL_025.subset(bbox)
    cells = np.arange(grid.nrows * grid.ncols, dtype=float).reshape(grid.shape)
    values = series.to_numpy()[:, None, None] + 0.01 * cells[None]
    return xr.DataArray(
        values,
        dims=("time", "lat", "lon"),
        coords={"time": series.index, "lat": grid.lats, "lon": grid.lons},
    )


def test_real_stations_against_a_gridded_series(hawaii: dict[str, object]) -> None:
    """Any gridded series can be scored at the real ISMN stations, as pytesmo scores them."""
    stations = hawaii["stations"]
    assert isinstance(stations, list)
    smap = hawaii["smap"]
    assert isinstance(smap, pd.Series)
    field = _grid_field(smap, BBox(-156.0, 19.0, -155.0, 20.5))
    rows = [(f"{s.network}/{s.station}", s.lat, s.lon, s.soil_moisture) for s in stations]
    table = match_stations(field, rows)
    assert list(table.index) == ["COSMOS/SilverSword", "SCAN/PuaAkala", "SCAN/SilverSword"]
    grid = GLOBAL_025.subset(BBox(-156.0, 19.0, -155.0, 20.5))
    for ident, lat, lon, series in rows:
        row, col, ok = grid.locate(np.array([lat]), np.array([lon]))
        assert ok[0] and table.loc[ident, "in_grid"]
        assert table.loc[ident, "cell_lat"] == grid.lats[row[0]]
        assert table.loc[ident, "cell_lon"] == grid.lons[col[0]]
        cell = field.isel(lat=row[0], lon=col[0]).to_series()
        both = pd.concat({"f": cell, "s": series}, axis=1, sort=True).dropna()
        assert table.loc[ident, "n"] == len(both) >= 30
        expected = _pytesmo(both["f"].to_numpy(), both["s"].to_numpy())
        for name, value in expected.items():
            assert table.loc[ident, name] == pytest.approx(value, rel=1e-10), (ident, name)
    summary = summarise(table)
    assert summary["n_stations"] == 3
    assert summary["r"] == pytest.approx(table["r"].median())


# -- station matching on crafted data and on the twin ---------------------------------------------
def test_match_stations_cells_and_inputs() -> None:
    time = pd.date_range("2021-01-01", periods=60, freq="D")
    base = pd.Series(np.sin(np.arange(60) / 5.0) * 0.1 + 0.3, index=time)
    field = _grid_field(base, BBox(0.0, 40.0, 1.0, 41.0))  # 4 × 4 cells, 40.875 … 40.125 N
    stations = [
        ("a", 40.9, 0.1, base),  # cell (0, 0): bias 0
        ("b", 40.3, 0.8, base.iloc[::2]),  # cell (2, 3): bias 0.11, 30 days
        ("c", 40.25, 0.5, base),  # on a cell edge: the cell to the south-east (floor)
        ("d", 45.0, 0.5, base),  # outside
        ("e", 40.9, 0.1, base.iloc[:20]),  # too few days
    ]
    table = match_stations(field, stations)
    assert table.loc["a", "bias"] == pytest.approx(0.0, abs=1e-12)
    assert table.loc["a", "r"] == pytest.approx(1.0)
    assert table.loc["b", "bias"] == pytest.approx(0.11) and table.loc["b", "n"] == 30
    assert (table.loc["c", "cell_lat"], table.loc["c", "cell_lon"]) == (40.125, 0.625)
    assert not table.loc["d", "in_grid"] and table.loc["d", "n"] == 0
    assert table.loc["e", "n"] == 20 and np.isnan(table.loc["e", "rmsd"])
    summary = summarise(table)
    assert summary["n_stations"] == 3
    # the same stations as a Dataset (time, station); a field with latitude ascending
    ds = xr.Dataset(
        {"soil_moisture": (("time", "station"), np.stack([base.to_numpy()] * 2, axis=1))},
        coords={
            "time": time,
            "station": ["a", "c"],
            "lat": ("station", [40.9, 40.25]),
            "lon": ("station", [0.1, 0.5]),
        },
    )
    other = match_stations(field.sortby("lat"), ds)
    pd.testing.assert_frame_equal(other, table.loc[["a", "c"]], check_names=False)
    with pytest.raises(ValueError, match="cell centres"):
        match_stations(field.assign_coords(lat=field["lat"] + 0.1), stations)


def test_match_stations_equals_the_twins_truth_skill() -> None:
    start, end = date(2015, 4, 1), date(2015, 9, 30)
    world = World(WorldSpec(seed=42, region=BBox(-105, 30, -95, 40)))
    ismn = world.ismn_daily(start, end)
    sites = world.stations()
    ismn = ismn.assign_coords(
        lat=("station", [s.lat for s in sites]), lon=("station", [s.lon for s in sites])
    )
    table = match_stations(world.truth(start, end), ismn)
    skill = world.true_skill("ismn", start, end)
    np.testing.assert_allclose(table["r"].to_numpy(), skill["rho"].values, rtol=1e-6)
    np.testing.assert_allclose(table["bias"].to_numpy(), -skill["bias"].values, atol=1e-6)
    assert summarise(table)["n_stations"] == len(sites)
