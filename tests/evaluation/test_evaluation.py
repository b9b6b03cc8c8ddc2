"""Evaluation: the experiments, scoring against the truth and stations, the report; the real
Hawaii set scored as pytesmo scores it."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from evaluation_helpers import GAIN, HAWAII, ISMN, PERIOD, SPINUP, pytesmo_at_stations

from smda.ops.evaluate import (
    CYCLED,
    report_directory,
    run_experiments,
    score_tables,
    write_report,
    write_series,
)
from smda.ops.references import read_series, read_stations
from smda.science.bundle import ModelBundle
from smda.science.cycle import climatology_state
from smda.science.skill import (
    SERIES,
    STATION_COLUMNS,
    TRUTH_COLUMNS,
    osse_checks,
    score_against_stations,
    score_against_truth,
)
from smda.storage.inputs import load_static
from smda.storage.store import Store
from smda_twin.world import World


# -- the experiments ------------------------------------------------------------------------------
def test_experiments_hold_every_series_on_the_grid(
    experiments: xr.Dataset, store: Store, bundle: ModelBundle
) -> None:
    assert list(experiments.data_vars) == list(SERIES)
    days = pd.date_range(*PERIOD)
    for name, field in experiments.data_vars.items():
        assert field.dims == ("time", "lat", "lon"), name
        assert field.shape == (len(days), *store.grid.shape), name
    np.testing.assert_array_equal(experiments["time"].values, days.values)
    np.testing.assert_array_equal(experiments["lat"].values, store.grid.lats)
    assert experiments.attrs["gain"] == str(GAIN)
    assert experiments.attrs["spinup_days"] == SPINUP
    assert experiments.attrs["model_version"] == bundle.version


def test_experiments_are_the_nudged_and_the_free_cycles(experiments: xr.Dataset) -> None:
    analysis, forecast = experiments["analysis"].values, experiments["forecast"].values
    smap = experiments["smap"].values
    # where SMAP has no retrieval the analysis is the forecast; where it has one it moves
    np.testing.assert_array_equal(analysis[np.isnan(smap)], forecast[np.isnan(smap)])
    moved = ~np.isclose(analysis, forecast, atol=1e-6)
    assert moved[np.isfinite(smap)].mean() > 0.9
    assert not moved[np.isnan(smap)].any()
    # the open loop never sees SMAP: it differs from the analysis (which it does)
    assert np.abs(experiments["open_loop"].values - analysis).max() > 0.005


def test_zero_gain_analysis_is_the_open_loop(
    store: Store, bundle: ModelBundle, experiments: xr.Dataset
) -> None:
    free = run_experiments(
        store, bundle, PERIOD[0], date(2015, 5, 20), gain=0.0, spinup_days=SPINUP
    )
    np.testing.assert_array_equal(free["analysis"].values, free["open_loop"].values)
    np.testing.assert_array_equal(
        free["open_loop"].values, experiments["open_loop"].sel(time=free["time"]).values
    )


def test_products_and_climatology_are_the_staged_ones(
    experiments: xr.Dataset, store: Store, bundle: ModelBundle, world: World
) -> None:
    for name in ("smap", "era5land", "gldas"):
        staged = world.product_daily(name, *PERIOD).astype(np.float32)
        np.testing.assert_array_equal(experiments[name].values, staged.values, err_msg=name)
    static = load_static(store)
    for day in (date(2015, 5, 3), date(2015, 6, 20)):
        expected = climatology_state(bundle, static, day)
        np.testing.assert_array_equal(
            experiments["climatology"].sel(time=str(day)).values, expected.values
        )


# -- scoring --------------------------------------------------------------------------------------
def test_truth_table_has_every_series_and_column(experiments: xr.Dataset, world: World) -> None:
    table = score_against_truth(experiments, world.truth(*PERIOD))
    assert list(table.index) == list(SERIES)
    assert tuple(table.columns) == TRUTH_COLUMNS
    n_days = len(pd.date_range(*PERIOD))
    assert (table["n_cells"] == world.grid.nrows * world.grid.ncols).all(), table
    assert (table["n_days"].drop("smap") == n_days).all()
    assert table.loc["smap", "n_days"] <= n_days  # SMAP has gaps
    assert (table[["r", "ubrmsd", "rmsd"]].to_numpy() > 0).all()
    # the twin's error model: ERA5-Land is wet-biased (offset 0.08, scale 0.7)
    assert table.loc["era5land", "bias"] > 0.0


def test_perfect_series_scores_r_one_and_ubrmsd_zero(world: World) -> None:
    truth = world.truth(*PERIOD)
    series = xr.Dataset({"perfect": truth, "shifted": truth + 0.05, "scaled": 2.0 * truth})
    table = score_against_truth(series, truth)
    np.testing.assert_allclose(table["r"], 1.0, rtol=1e-6)
    np.testing.assert_allclose(table.loc[["perfect", "shifted"], "ubrmsd"], 0.0, atol=1e-6)
    np.testing.assert_allclose(table.loc["shifted", "bias"], 0.05, rtol=1e-5)
    assert table.loc["perfect", "rmsd"] == 0.0
    assert table.loc["scaled", "ubrmsd"] > 0.0
    # stations that report the truth of their cell: a perfect series again
    lats, lons = np.meshgrid(world.grid.lats, world.grid.lons, indexing="ij")
    stations = [
        (f"s{i}", float(lat), float(lon), truth.sel(lat=lat, lon=lon).to_series())
        for i, (lat, lon) in enumerate(zip(lats.ravel(), lons.ravel(), strict=True))
    ]
    at_stations = score_against_stations(series, stations)
    assert tuple(at_stations.columns) == STATION_COLUMNS
    assert (at_stations["n_stations"] == len(stations)).all()
    np.testing.assert_allclose(at_stations.loc["perfect", ["r"]], 1.0, rtol=1e-6)
    np.testing.assert_allclose(at_stations.loc["perfect", ["ubrmsd", "rmsd"]], 0.0, atol=1e-7)


def test_truth_on_other_days_or_cells(world: World) -> None:
    truth = world.truth(*PERIOD)
    series = xr.Dataset({"x": truth.isel(time=slice(0, 40))})
    assert score_against_truth(series, truth).loc["x", "n_days"] == 40  # common days only
    with pytest.raises(ValueError, match="no day in common"):
        score_against_truth(series, world.truth(date(2016, 1, 1), date(2016, 2, 1)))
    with pytest.raises(ValueError, match="cell centres"):
        score_against_truth(series, truth.assign_coords(lat=truth["lat"] + 1.0))
    with pytest.raises(ValueError, match="time, lat, lon"):
        score_against_truth(xr.Dataset({"y": truth.isel(time=0)}), truth)


def test_osse_checks() -> None:
    table = pd.DataFrame(
        {
            "r": [0.9, 0.8, 0.7, 0.85, 0.6, 0.3],
            "ubrmsd": [0.02, 0.03, 0.04, 0.025, 0.05, 0.06],
        },
        index=["analysis", "open_loop", "smap", "era5land", "gldas", "climatology"],
    )
    checks = {c.claim: c for c in osse_checks(table)}
    assert all(checks[f"analysis beats {s}"].passed for s in ("open_loop", "smap", "gldas"))
    assert checks["open_loop beats climatology"].passed
    assert not checks["open_loop beats era5land"].passed  # R 0.8 < 0.85
    assert not checks["open_loop beats era5land"].required
    assert checks["analysis beats smap"].detail == "R 0.900 > 0.700; ubRMSD 0.0200 < 0.0400"
    table.loc["analysis", "ubrmsd"] = 0.035  # higher than the open loop's
    assert not {c.claim: c for c in osse_checks(table)}["analysis beats open_loop"].passed
    assert len(osse_checks(table.drop(index="climatology"))) == 7


# -- the report -----------------------------------------------------------------------------------
def test_report_is_written_with_the_table_and_the_protocol(
    experiments: xr.Dataset, world: World, tmp_path: Path
) -> None:
    tables = score_tables(experiments, truth=world.truth(*PERIOD))
    directory = report_directory(tmp_path, world.grid)
    assert directory == tmp_path / "reports" / "r0.25_216_320_4x4"
    meta = {
        "start": "2015-05-01",
        "end": "2015-06-30",
        "region": "-100,35,-99,36",
        "min_n": 30,
        **experiments.attrs,
    }
    path = write_report(tables, directory, meta=meta)
    assert path == directory / "evaluation_2015-05-01_2015-06-30.md"
    text = path.read_text()
    for words in (
        "2015-05-01 … 2015-06-30",
        "region -100,35,-99,36",
        "gain G = 0.5",
        f"model {experiments.attrs['model_version']}",
        "10 days before the period",
        "| series | cells | median R | median ubRMSD |",
    ):
        assert words in text, words
    rows = [line for line in text.splitlines() if line.startswith("| ")][1:]
    assert [r.split(" | ")[0].lstrip("| ") for r in rows] == list(SERIES)
    report = json.loads(path.with_suffix(".json").read_text())
    assert report["meta"]["model_version"] == experiments.attrs["model_version"]
    truth = report["tables"]["truth"]
    assert list(truth) == list(SERIES)
    assert truth["analysis"]["r"] == pytest.approx(tables["truth"].loc["analysis", "r"])
    assert {c["claim"] for c in report["checks"]} >= {"analysis beats open_loop"}
    assert sorted(p.name for p in directory.iterdir()) == [
        path.with_suffix(".json").name,
        path.name,
    ]
    with pytest.raises(ValueError, match="start"):
        write_report(tables, directory, meta={"region": "x"})


def test_the_cycled_series_are_stored_beside_the_report(
    experiments: xr.Dataset, world: World, tmp_path: Path
) -> None:
    """Analysis, open loop and forecast of every day, as computed; no product or reference."""
    import netCDF4

    directory = report_directory(tmp_path, world.grid)
    path = write_series(experiments, directory)
    assert path == directory / "evaluation_2015-05-01_2015-06-30.nc"
    assert [p.name for p in directory.iterdir()] == [path.name]  # no temporary left
    with xr.open_dataset(path) as stored:
        assert list(stored.data_vars) == list(CYCLED) == ["analysis", "open_loop", "forecast"]
        np.testing.assert_array_equal(stored["time"].values, pd.date_range(*PERIOD).values)
        for name in CYCLED:
            assert stored[name].dtype == np.float32 and stored[name].attrs["units"] == "m3 m-3"
            np.testing.assert_array_equal(stored[name].values, experiments[name].values)
        np.testing.assert_array_equal(stored["lat"].values, world.grid.lats)
        assert {k: stored.attrs[k] for k in ("start", "end", "gain", "model_version")} == {
            "start": "2015-05-01",
            "end": "2015-06-30",
            "gain": str(GAIN),
            "model_version": experiments.attrs["model_version"],
        }
        assert stored.attrs["spinup_days"] == SPINUP
    with netCDF4.Dataset(path) as nc:  # the state files' CF time axis, compressed fields
        time = nc["time"]
        assert time.units == "days since 1970-01-01" and time.calendar == "standard"
        assert time[0] == (PERIOD[0] - date(1970, 1, 1)).days
        assert nc["open_loop"].filters()["zlib"]
    with pytest.raises(ValueError, match="no open_loop"):
        write_series(experiments.drop_vars("open_loop"), tmp_path)


def test_nothing_to_score_against(experiments: xr.Dataset) -> None:
    from smda.errors import ConfigError

    with pytest.raises(ConfigError, match="nothing to score against"):
        score_tables(experiments)


# -- the real Hawaii set --------------------------------------------------------------------------
def test_real_hawaii_products_against_real_ismn_stations(
    real_data: Path, hawaii_series: Path
) -> None:
    """Any gridded series scores against the real ISMN stations as pytesmo scores the matched
    pairs (station daily means vs the station's cell)."""
    series = read_series(hawaii_series)
    assert list(series.data_vars) == ["gldas", "era5land", "smap"]
    stations = read_stations(real_data / ISMN, max_depth=0.25)
    assert [s[0] for s in stations] == [
        "COSMOS/SilverSword/Cosmic-ray-Probe",
        "SCAN/PuaAkala/Hydraprobe-Analog-(2.5-Volt)",
        "SCAN/SilverSword/Hydraprobe-Analog-(2.5-Volt)",
    ]
    table = score_against_stations(series, stations)
    for name in series.data_vars:
        expected = pytesmo_at_stations(series[name], stations)
        assert table.loc[name, "n_stations"] == len(expected) == 3, name
        for metric in ("r", "ubrmsd", "bias", "rmsd"):
            assert table.loc[name, metric] == pytest.approx(expected[metric].median(), rel=1e-9), (
                name,
                metric,
            )
    # surface sensors only (the default): the two SCAN probes
    surface = read_stations(real_data / HAWAII / "ismn_ceop")
    assert len(surface) == 2
    assert (score_against_stations(series, surface)["n_stations"] == 2).all()


def test_twin_truth_is_the_worlds(world: World) -> None:
    from smda.cli.twin import truth_of
    from smda.errors import ConfigError

    spec = world.spec
    truth = truth_of(spec.seed, spec.region, date(2015, 5, 1), date(2015, 5, 3), epoch=spec.epoch)
    xr.testing.assert_equal(truth, world.truth(date(2015, 5, 1), date(2015, 5, 3)))
    with pytest.raises(ConfigError, match="epoch"):
        truth_of(spec.seed, spec.region, date(2014, 12, 1), date(2015, 1, 3), epoch=spec.epoch)
