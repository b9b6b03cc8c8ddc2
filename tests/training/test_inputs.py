"""Reading staged inputs: series, ERA5, the inputs of a day, what is missing, provenance
(and the staged-world helper that writes them as ingest would)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from staged_world import stage_world, twin_era5, twin_precip, twin_static

from smda.errors import MalformedFile, MissingInputs
from smda.storage.inputs import (
    day_inputs,
    input_versions,
    load_era5,
    load_series,
    load_static,
    missing_inputs,
)
from smda.storage.store import Store
from smda_twin.world import World

D0, D1 = date(2015, 4, 1), date(2015, 4, 20)
TODAY = date(2015, 4, 25)
GAP = date(2015, 4, 10)
REGION = "--region=-100,35,-99,36"


def _small(world: World, root: Path) -> Store:
    """20 days staged (MSWEP from 29 days earlier), ERA5T/NRT as of TODAY, SMAP missing GAP."""
    store = Store(root, world.grid)
    stage_world(store, world, D0, D1, today=TODAY, skip=[("smap", GAP)])
    return store


@pytest.fixture(scope="module")
def small(world: World, tmp_path_factory: pytest.TempPathFactory) -> Store:
    """:func:`_small`, shared by the tests that only read it."""
    return _small(world, tmp_path_factory.mktemp("inputs") / "data")


def test_stage_world_writes_days_ledger_and_provenance(small: Store) -> None:
    assert small.staged_days("era5") == [D0 + timedelta(days=i) for i in range(20)]
    assert small.staged_days("mswep")[0] == D0 - timedelta(days=29)
    assert GAP not in small.staged_days("smap") and len(small.staged_days("smap")) == 19
    for source in ("era5land", "gldas"):
        assert len(small.staged_days(source)) == 20
    old, recent = small.ledger("era5").get(D0), small.ledger("era5").get(D1)
    assert old is not None and recent is not None
    assert recent.provisional and recent.versions == {"era5_201504.nc": "expver=0005"}
    assert small.ledger("mswep").get(D1).provisional  # type: ignore[union-attr]
    assert not small.ledger("mswep").get(D0).provisional  # type: ignore[union-attr]
    assert len(small.ledger("gldas").get(D0).files) == 8  # type: ignore[union-attr]
    ds = small.open_staged("era5", D1)
    assert ds.attrs["expver"] == "0005"
    assert json.loads(ds.attrs["smda_provenance"])["files"][0]["name"] == "era5_201504.nc"
    assert set(small.open_staged("smap", D0)) == {"soil_moisture", "count"}
    assert set(small.open_staged("era5land", D0)) == {"swvl1_mean"}


def test_series_and_era5_equal_the_world(small: Store, world: World) -> None:
    era5 = load_era5(small, D0, D1)
    xr.testing.assert_allclose(era5, twin_era5(world, D0, D1))
    assert era5["tp_sum"].attrs["units"] == "mm" and era5["t2m_mean"].dtype == np.float32
    precip = load_series(small, "mswep", "precipitation", D0 - timedelta(days=29), D1)
    np.testing.assert_allclose(precip.values, twin_precip(world, D0 - timedelta(days=29), D1))
    smap = load_series(small, "smap", "soil_moisture", D0, D1)
    assert smap.dims == ("time", "lat", "lon") and smap.dtype == np.float32
    truth = world.product_daily("smap", D0, D1)
    gap = smap.sel(time=str(GAP))
    assert bool(gap.isnull().all())
    others = smap.time != np.datetime64(GAP)
    np.testing.assert_array_equal(smap.sel(time=others).values, truth.sel(time=others).values)
    later = load_series(small, "gldas", "soil_moisture", D1, D1 + timedelta(days=3))
    assert int(later.notnull().any(dim=("lat", "lon")).sum()) == 1  # unstaged days are NaN


def test_series_of_a_band_of_rows_is_that_band_of_the_grid(small: Store) -> None:
    whole = load_series(small, "smap", "soil_moisture", D0, D1)  # with the GAP day's NaN
    band = load_series(small, "smap", "soil_moisture", D0, D1, rows=slice(1, 3))
    xr.testing.assert_identical(band, whole.isel(lat=slice(1, 3)))
    assert band.shape == (whole.shape[0], 2, whole.shape[2])
    later = load_series(
        small, "gldas", "soil_moisture", D1, D1 + timedelta(days=3), rows=slice(2, 3)
    )
    assert later.shape == (4, 1, whole.shape[2]) and int(later.notnull().sum()) == whole.shape[2]
    era5 = load_era5(small, D0, D1, rows=slice(1, 3))  # read from each file's band of rows
    xr.testing.assert_identical(era5, load_era5(small, D0, D1).isel(lat=slice(1, 3)))


def test_a_staged_file_of_another_grid_is_malformed_and_says_to_restage(small: Store) -> None:
    other = Store(small.root, small.grid)
    g = small.grid
    other.grid = replace(g, nrows=g.nrows - 1)  # the same region's files, one row short
    for rows in (None, slice(0, 1)):
        with pytest.raises(MalformedFile, match=r"another grid; re-stage it"):
            load_series(other, "smap", "soil_moisture", D0, D0, rows=rows)
        with pytest.raises(MalformedFile, match=r"has shape \(4, 4\)"):
            load_era5(other, D0, D0, rows=rows)


def test_static(small: Store, world: World) -> None:
    static = load_static(small)
    assert static["land"].dtype == bool and bool(static["land"].all())
    xr.testing.assert_allclose(static, twin_static(world))


def test_day_inputs(small: Store, world: World) -> None:
    inputs = day_inputs(small, D1, 30)
    assert inputs.day == D1
    assert inputs.era5["t2m_mean"].dims == ("lat", "lon")
    np.testing.assert_allclose(
        inputs.era5["t2m_mean"].values, twin_era5(world, D1, D1)["t2m_mean"].values[0]
    )
    assert inputs.precip.sizes["time"] == 30
    assert str(inputs.precip.time.values[0])[:10] == str(D1 - timedelta(days=29))
    assert inputs.smap is not None and inputs.smap["count"].dtype == np.uint16
    sm = inputs.smap["soil_moisture"].values
    np.testing.assert_array_equal(inputs.smap["count"].values, np.isfinite(sm))
    assert day_inputs(small, GAP, 30).smap is None  # forecast-only day


def test_missing_inputs_name_days_and_fetch_commands(small: Store) -> None:
    assert missing_inputs(small, D1, 30) == []
    later = D1 + timedelta(days=2)
    missing = missing_inputs(small, later, 30)
    assert missing == [
        ("era5", later),
        ("mswep", D1 + timedelta(days=1)),
        ("mswep", later),
    ]
    with pytest.raises(MissingInputs) as caught:
        day_inputs(small, later, 30)
    message = str(caught.value)
    assert caught.value.missing == missing
    assert f"era5 {later} (1 day)" in message
    assert f"mswep {D1 + timedelta(days=1)}..{later} (2 days)" in message
    assert f"`smda fetch era5 --start {later} --end {later} {REGION}`" in message
    with pytest.raises(MissingInputs, match="smda fetch mswep --start 2015-02-01 --end 2015-03-02"):
        day_inputs(small, D0, 60)  # the MSWEP window reaches before what is staged
    with pytest.raises(MissingInputs, match=r"ERA5: not staged .* era5 2015-04-21..2015-04-22"):
        load_era5(small, D1, D1 + timedelta(days=2))


def test_missing_static(world: World, data_dir: Path) -> None:
    store = Store(data_dir, world.grid)
    stage_world(store, world, D0, D0, static=False, history_days=1)
    with pytest.raises(
        MissingInputs, match=r"static fields: not staged .*`smda fetch era5"
    ) as caught:
        load_static(store)
    assert caught.value.missing == [("era5_static", None)]
    with pytest.raises(MissingInputs, match="static fields"):
        day_inputs(store, D0, 1)


def test_input_versions_are_deterministic_and_follow_restaging(
    world: World, data_dir: Path
) -> None:
    small = _small(world, data_dir)  # re-staged below
    before = input_versions(small, D1, 30)
    assert json.loads(json.dumps(before)) == before  # JSON-native, as the state chain stores it
    assert input_versions(small, D1, 30) == before
    assert before["era5"]["provisional"] and before["era5"]["versions"] == ["expver=0005"]
    assert before["mswep"]["days"] == 30 and before["mswep"]["provisional_days"][-1] == str(D1)
    assert before["smap"]["files"] == [f"SMAP_L3_SM_P_E_{D1:%Y%m%d}_R19240_001.h5"]
    assert input_versions(small, GAP, 30)["smap"] is None
    assert before["static"]["sha256"]
    stage_world(small, world, D1, D1, sources=["era5"], history_days=1, static=False)  # final
    after = input_versions(small, D1, 30)
    assert after["era5"]["versions"] == ["expver=0001"] and not after["era5"]["provisional"]
    assert after["era5"]["sha256"] != before["era5"]["sha256"]
    assert after["mswep"] == before["mswep"] and after["smap"] == before["smap"]
    missing = input_versions(small, D1 + timedelta(days=1), 30)
    assert missing["era5"]["sha256"] is None and missing["mswep"]["days"] == 29


def test_load_series_rejects_an_unknown_variable(small: Store) -> None:
    with pytest.raises(MalformedFile, match=r"no .* variable.*'swvl1'"):
        load_series(small, "era5land", "swvl1", D0, D0)
