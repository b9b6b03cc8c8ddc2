"""Drift scenarios (smda_twin.scenario): parsing, what the world serves under them, the control
API and the replicas' caches, what smda's ingest makes of degraded products, and how the
innovations O−F of the cycle respond."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import h5py
import numpy as np
import pytest
import requests
from staged_world import TINY_REGION, stage_world, tiny_world
from training.training_helpers import END, FAST, START
from typer.testing import CliRunner

from smda.cli import app
from smda.config import Settings
from smda.geo.grid import BBox
from smda.ingest.context import make_context
from smda.ingest.endpoints import Endpoints
from smda.ingest.fetch import fetch_range
from smda.ingest.readers.mswep import open_mswep
from smda.ingest.retry import RetryPolicy
from smda.ingest.sources.base import IngestContext
from smda.ops.train import train_from_store
from smda.science.bundle import ModelBundle
from smda.science.cycle import CycleResult, climatology_state, run
from smda.science.features import global_cell_ids
from smda.science.nudging import cdf_match
from smda.storage.inputs import day_inputs
from smda.storage.store import Store
from smda_twin.precipitation import MSWEP_GRID
from smda_twin.scenario import (
    Scenario,
    ScenarioError,
    ScenarioWorld,
    SmapBias,
)
from smda_twin.service import Twin
from smda_twin.world import World

SWITCH = date(2015, 6, 26)
"""Start of the drifts of the world-level tests (the tiny world's products start 2015-01-01)."""
HALF = [-100.0, 35.0, -99.5, 35.5]
"""The south-west quarter of the tiny region (2 × 2 of its 4 × 4 cells)."""
FILL = -9999.0


def _scenario(*drifts: dict[str, object]) -> Scenario:
    return Scenario.from_json(list(drifts))


@pytest.fixture(scope="module")
def world() -> World:
    return tiny_world()


# -- parsing --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            [{"kind": "smap_drift", "start": "2024-07-01"}],
            "drift 1: unknown kind 'smap_drift'; valid kinds: smap_bias, mswep_bias, "
            "mswep_missing, era5_shift, era5_missing",
        ),
        (
            [{"kind": "smap_bias", "start": "2024-13-01", "bias": 0.05}],
            "drift 1 (smap_bias): 'start': '2024-13-01' is not a date (YYYY-MM-DD)",
        ),
        (
            [{"kind": "era5_shift", "start": "2024-07-01", "variable": "temp", "offset": 3}],
            "drift 1 (era5_shift): 'variable': unknown variable 'temp'; valid short names: t2m, ",
        ),
        (
            [{"kind": "era5_missing", "start": "2024-07-01", "variable": "ssrd", "dataset": "x"}],
            "'dataset': unknown dataset 'x'; choose era5 or era5land",
        ),
        ([{"kind": "mswep_bias", "start": "2024-07-01"}], "(mswep_bias): 'factor' is required"),
        (
            [{"kind": "mswep_bias", "start": "2024-07-01", "factor": -0.5}],
            "factor must be a finite number ≥ 0",
        ),
        (
            [{"kind": "mswep_missing", "start": "2024-07-01", "region": [1, 2, 3]}],
            "'region': [1, 2, 3] is not [west, south, east, north]",
        ),
        (
            [{"kind": "smap_bias", "start": "2024-07-01", "bias": 0.05, "bais": 1}],
            "unknown field(s) ['bais']; smap_bias has ['bias', 'drift_per_day', 'end', 'start']",
        ),
        ([{"kind": "smap_bias", "start": "2024-07-01"}], "give a non-zero 'bias'"),
        (
            [{"kind": "smap_bias", "start": "2024-07-01", "end": "2024-06-01", "bias": 0.1}],
            "end 2024-06-01 is before start 2024-07-01",
        ),
        ({"smap_bias": 0.05}, "a scenario is a JSON list of drifts"),
    ],
)
def test_bad_scenarios_name_the_problem(data: object, message: str) -> None:
    with pytest.raises(ScenarioError) as info:
        Scenario.from_json(data)
    assert message in str(info.value)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ScenarioError) as info:
        Scenario.from_json(
            [
                {"kind": "smap_bias", "start": "2024-07-01", "bias": 0.05},
                {"kind": "era5_shift", "start": "yesterday", "variable": "t2m"},
            ]
        )
    assert info.value.problems == [
        "drift 2 (era5_shift): 'start': 'yesterday' is not a date (YYYY-MM-DD)",
        "drift 2 (era5_shift): 'offset' is required",
    ]


def test_scenario_round_trips_and_reads_files(tmp_path: Path) -> None:
    drifts = [
        {"kind": "smap_bias", "start": "2024-07-01", "bias": 0.05, "drift_per_day": 0.0005},
        {"kind": "mswep_bias", "start": "2024-07-02", "end": "2024-07-09", "factor": 0.6},
        {"kind": "mswep_missing", "start": "2024-07-03", "region": HALF},
        {"kind": "era5_shift", "start": "2024-07-04", "variable": "t2m", "offset": 3.0},
        {"kind": "era5_missing", "start": "2024-07-05", "variable": "ssrd", "dataset": "era5land"},
    ]
    scenario = Scenario.from_json(drifts)
    assert [d.kind for d in scenario.drifts] == [d["kind"] for d in drifts]
    assert Scenario.from_json(scenario.to_json()) == scenario
    assert Scenario.from_json({"drifts": drifts}) == scenario
    assert Scenario.from_json([]) == Scenario.from_json(None) == Scenario()
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(drifts))
    assert Scenario.read(path) == scenario
    path.write_text("[{'kind': 'smap_bias'}]")
    with pytest.raises(ScenarioError, match=r"scenario.json is not valid JSON"):
        Scenario.read(path)
    with pytest.raises(ScenarioError, match=r"cannot read the scenario file .*absent.json"):
        Scenario.read(tmp_path / "absent.json")


# -- what the world serves ------------------------------------------------------------------------


def test_smap_bias_shifts_valid_retrievals_from_start(world: World) -> None:
    bias, per_day = 0.05, 0.001
    served = ScenarioWorld(
        world,
        _scenario(
            {"kind": "smap_bias", "start": str(SWITCH), "bias": bias, "drift_per_day": per_day}
        ),
    )
    spec = world.spec.smap
    for day, expected in (
        (SWITCH - timedelta(days=1), 0.0),
        (SWITCH, bias),
        (SWITCH + timedelta(days=5), bias + 5 * per_day),
    ):
        for method in ("smap_l3e", "smap_l3"):
            clean, shifted = getattr(world, method)(day), getattr(served, method)(day)
            checked = 0
            for p in ("AM", "PM"):  # one pass a day covers the tiny region
                sm0, sm1 = clean[p]["soil_moisture"], shifted[p]["soil_moisture"]
                valid = sm0 != FILL
                assert np.array_equal(sm1 == FILL, ~valid)
                want = np.clip(sm0[valid] + expected, spec.valid_min, spec.valid_max)
                np.testing.assert_allclose(sm1[valid], want, atol=1e-6)
                for name in ("retrieval_qual_flag", "tb_time_seconds", "surface_flag"):
                    assert np.array_equal(clean[p][name], shifted[p][name])
                checked += int(valid.sum())
            assert checked > 0, (day, method)
    # the gridded daily SMAP of the staged world follows
    span = (SWITCH - timedelta(days=3), SWITCH + timedelta(days=2))
    clean_daily = world.product_daily("smap", *span)
    kept = clean_daily.values.copy()
    diff = served.product_daily("smap", *span) - clean_daily
    np.testing.assert_allclose(
        diff.mean(("lat", "lon")).values,
        [0, 0, 0, bias, bias + per_day, bias + 2 * per_day],
        atol=1e-6,
    )
    assert np.array_equal(world.product_daily("smap", *span).values, kept, equal_nan=True)
    assert np.array_equal(
        served.product_daily("era5land", *span), world.product_daily("era5land", *span)
    )
    assert served.variant("smap", SWITCH - timedelta(days=1)) == ""
    assert served.variant("smap", SWITCH).startswith("scenario-")
    assert served.variant("mswep", SWITCH) == ""


def test_mswep_scaled_and_region_missing(world: World) -> None:
    served = ScenarioWorld(
        world,
        _scenario(
            {"kind": "mswep_bias", "start": str(SWITCH), "factor": 0.6},
            {"kind": "mswep_missing", "start": str(SWITCH + timedelta(days=2)), "region": HALF},
        ),
    )
    window = MSWEP_GRID.subset(BBox(-100.5, 34.5, -98.5, 36.5))
    first = SWITCH - timedelta(days=2)
    clean, scaled = world.mswep_series(first, 6, window), served.mswep_series(first, 6, window)
    assert np.array_equal(scaled[:2], clean[:2])  # before the start: untouched
    np.testing.assert_allclose(scaled[2:4], 0.6 * clean[2:4], rtol=1e-6)
    lat, lon = window.lats[:, None], window.lons[None, :]
    inside = (lat >= 35.0) & (lat <= 35.5) & (lon >= -100.0) & (lon <= -99.5)
    assert inside.sum() == 25
    assert np.isnan(scaled[4:][:, inside]).all()
    np.testing.assert_allclose(scaled[4:][:, ~inside], 0.6 * clean[4:][:, ~inside], rtol=1e-6)
    day = SWITCH + timedelta(days=3)
    np.testing.assert_array_equal(served.mswep_daily(day, window), scaled[5])
    nrt = served.mswep_nrt(day, day + timedelta(days=1), window)
    clean_nrt = world.mswep_nrt(day, day + timedelta(days=1), window)
    np.testing.assert_allclose(nrt[~inside], 0.6 * clean_nrt[~inside], rtol=1e-6)
    assert np.isnan(nrt[inside]).all() and np.isfinite(clean_nrt).all()
    assert np.array_equal(world.mswep_series(first, 6, window), clean)  # never changed in place


def test_era5_variable_shifted_or_absent(world: World) -> None:
    served = ScenarioWorld(
        world,
        _scenario(
            {"kind": "era5_shift", "start": str(SWITCH), "variable": "t2m", "offset": 3.0},
            {"kind": "era5_missing", "start": str(SWITCH + timedelta(days=1)), "variable": "ssrd"},
            {
                "kind": "era5_shift",
                "start": str(SWITCH),
                "variable": "sp",
                "offset": -500.0,
                "dataset": "era5land",
            },
        ),
    )
    lat, lon = np.array([36.0, 35.75]), np.array([-100.0, -99.75, -99.5])
    names = ["t2m", "ssrd", "tp"]
    before = SWITCH - timedelta(days=1)
    clean = world.era5_series(before, 2, lat, lon, names)
    shifted = served.era5_series(before, 2, lat, lon, names)
    assert list(shifted) == names  # ssrd is still there: its drift starts a day later
    assert np.array_equal(shifted["t2m"][0], clean["t2m"][0])
    np.testing.assert_allclose(shifted["t2m"][1], clean["t2m"][1] + 3.0, atol=1e-4)
    assert np.array_equal(shifted["tp"], clean["tp"])
    # one affected day removes the variable from a whole series, as from a whole CDS result
    assert list(served.era5_series(before, 3, lat, lon, names)) == ["t2m", "tp"]
    assert list(served.era5_hourly(SWITCH, lat, lon, names)) == names
    assert list(served.era5_hourly(SWITCH + timedelta(days=1), lat, lon, names)) == ["t2m", "tp"]
    land = served.era5land_hourly(SWITCH + timedelta(days=1), lat, lon, ["t2m", "sp", "ssrd"])
    land0 = world.era5land_hourly(SWITCH + timedelta(days=1), lat, lon, ["t2m", "sp", "ssrd"])
    assert list(land) == ["t2m", "sp", "ssrd"]  # the ERA5 drifts do not touch ERA5-Land
    assert np.array_equal(land["t2m"], land0["t2m"])
    np.testing.assert_allclose(land["sp"], land0["sp"] - 500.0, rtol=1e-6)


# -- the service: control API, CLI, caches --------------------------------------------------------


def test_control_api_sets_lists_and_clears_the_scenario(twin: Twin) -> None:
    control = twin.endpoints().control_url
    assert requests.get(control + "/status", timeout=5).json()["scenario"] == []
    drifts = [
        {"kind": "smap_bias", "start": "2024-07-10", "bias": 0.05},
        {"kind": "era5_missing", "start": "2024-07-12", "variable": "ssrd"},
    ]
    r = requests.post(control + "/scenario", json=drifts, timeout=5)
    assert r.status_code == 200
    listed = requests.get(control + "/status", timeout=5).json()["scenario"]
    assert [d["kind"] for d in listed] == ["smap_bias", "era5_missing"]
    assert listed[0]["bias"] == 0.05 and listed[1]["variable"] == "ssrd"
    assert isinstance(twin.world.scenario.drifts[0], SmapBias)
    bad = requests.post(control + "/scenario", json=[{"kind": "solar_flare"}], timeout=5)
    assert bad.status_code == 400 and "valid kinds: smap_bias" in bad.json()["detail"]
    assert len(twin.world.scenario.drifts) == 2  # a refused scenario changes nothing
    assert requests.delete(control + "/scenario", timeout=5).json() == {"scenario": []}
    assert requests.get(control + "/scenario", timeout=5).json() == {"scenario": []}
    requests.post(control + "/scenario", json=drifts, timeout=5)
    assert requests.post(control + "/scenario", json=[], timeout=5).json() == {"scenario": []}
    assert twin.status()["scenario"] == []


def test_twin_serve_reads_a_scenario_file(tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.json"
    scenario.write_text(
        json.dumps([{"kind": "era5_shift", "start": "2024-07-01", "variable": "t2m", "offset": 2}])
    )
    endpoints = tmp_path / "ep.json"
    command = [sys.executable, "-m", "smda", "twin", "serve", "--region", "-100,35,-99,36"]
    command += ["--today", "2024-07-20", "--endpoints-file", str(endpoints)]
    proc = subprocess.Popen(
        [*command, "--scenario", str(scenario)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "SMDA_LOG_LEVEL": "WARNING"},
    )
    try:
        deadline = time.monotonic() + 60
        while not endpoints.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert endpoints.exists(), proc.stderr.read().decode() if proc.stderr else ""
        status = requests.get(Endpoints.read(endpoints).control_url + "/status", timeout=5).json()
        assert status["scenario"] == [
            {
                "kind": "era5_shift",
                "start": "2024-07-01",
                "variable": "t2m",
                "offset": 2.0,
                "dataset": "era5",
            }
        ]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and b"scenario:" in err, err.decode()


def test_twin_serve_refuses_a_bad_scenario_file(tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.json"
    scenario.write_text(
        json.dumps([{"kind": "era5_shift", "start": "2024-07-01", "variable": "T2M", "offset": 2}])
    )
    result = CliRunner().invoke(app, ["twin", "serve", "--scenario", str(scenario)])
    assert result.exit_code == 2
    assert "unknown variable 'T2M'" in " ".join(result.output.split())


def _smap_am(path: Path) -> np.ndarray:
    with h5py.File(path, "r") as f:
        return np.asarray(f["Soil_Moisture_Retrieval_Data_AM/soil_moisture"][...])


def test_cached_granules_and_files_follow_the_scenario(twin: Twin, tmp_path: Path) -> None:
    day = date(2024, 7, 10)
    collection = twin.earthdata.collections["SPL3SMP_E"]
    granule = next(iter(twin.earthdata.granules(collection, day, day)))
    clean_path = twin.earthdata.granule_file(granule)
    clean = _smap_am(clean_path)
    twin.set_scenario(_scenario({"kind": "smap_bias", "start": str(day), "bias": 0.05}))
    biased_path = twin.earthdata.granule_file(granule)
    assert biased_path != clean_path
    valid = clean != FILL
    np.testing.assert_allclose(
        _smap_am(biased_path)[valid], np.clip(clean[valid] + 0.05, 0.02, 0.6), atol=1e-6
    )
    # CMR announces the served file's checksum, and the data host serves it
    window = f"{day}T00:00:00Z,{day}T23:59:59Z"
    items = requests.get(
        twin.earthdata.cmr_base_url + "granules.umm_json",
        params={"short_name": "SPL3SMP_E", "temporal[]": window},
        timeout=60,
    ).json()["items"]
    info = items[0]["umm"]["DataGranule"]["ArchiveAndDistributionInformation"][0]
    url = items[0]["umm"]["RelatedUrls"][0]["URL"]
    body = requests.get(
        url, headers={"Authorization": f"Bearer {twin.earthdata.token}"}, timeout=60
    ).content
    assert info["Checksum"]["Value"] == hashlib.sha256(body).hexdigest()
    assert body == biased_path.read_bytes()
    # an earlier day is not affected and keeps its file; clearing serves the clean file again
    earlier = next(
        iter(twin.earthdata.granules(collection, day - timedelta(days=1), day - timedelta(days=1)))
    )
    assert twin.earthdata.granule_file(earlier).parent == clean_path.parent
    twin.set_scenario(Scenario())
    assert twin.earthdata.granule_file(granule) == clean_path
    assert np.array_equal(_smap_am(clean_path), clean)

    # MSWEP: a file served before a scenario change is not served after it (ETag moves too)
    region01 = MSWEP_GRID.subset(TINY_REGION)
    day = max(
        (date(2024, 7, 1) + timedelta(days=i) for i in range(19)),
        key=lambda d: float(twin.world.mswep_daily(d, region01).sum()),
    )
    url = twin.mswep.url_template.format(yyyy="2024", ddd=f"{day:%j}")

    def fetch(name: str) -> tuple[str, np.ndarray]:
        r = requests.get(url, timeout=60)
        (tmp_path / name).write_bytes(r.content)
        return r.headers["ETag"], open_mswep(tmp_path / name).sel(
            lat=slice(36, 35), lon=slice(-100, -99)
        ).values

    etag0, rain0 = fetch("clean.nc")
    twin.set_scenario(_scenario({"kind": "mswep_bias", "start": str(day), "factor": 0.5}))
    etag1, rain1 = fetch("scaled.nc")
    assert etag1 != etag0 and rain0.sum() > 0
    np.testing.assert_allclose(rain1, 0.5 * rain0, rtol=1e-6)


# -- smda's ingest of degraded products ------------------------------------------------------------

_POLICY = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05, deadline=60, max_retry_after=2)


def _context(twin: Twin, data_dir: Path) -> IngestContext:
    return make_context(
        Settings(data_dir=data_dir), region=TINY_REGION, endpoints=twin.endpoints(), policy=_POLICY
    )


def test_ingest_stages_biased_smap(twin: Twin, tmp_path: Path) -> None:
    day = date(2024, 7, 12)
    clean = _context(twin, tmp_path / "clean")
    assert fetch_range(["smap"], day, day, clean).outcomes[0].status == "fetched"
    twin.set_scenario(_scenario({"kind": "smap_bias", "start": str(day), "bias": 0.05}))
    biased = _context(twin, tmp_path / "biased")
    assert fetch_range(["smap"], day, day, biased).outcomes[0].status == "fetched"
    sm0 = clean.store.open_staged("smap", day)["soil_moisture"].values
    sm1 = biased.store.open_staged("smap", day)["soil_moisture"].values
    assert np.isfinite(sm0).any()
    np.testing.assert_allclose(sm1[np.isfinite(sm0)], sm0[np.isfinite(sm0)] + 0.05, atol=1e-5)


def test_ingest_fails_a_missing_era5_variable_with_a_clear_message(
    twin: Twin, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    start = date(2024, 7, 10)
    twin.set_scenario(_scenario({"kind": "era5_missing", "start": str(start), "variable": "ssrd"}))
    ctx = _context(twin, tmp_path / "data")
    with caplog.at_level(logging.WARNING):
        report = fetch_range(["era5"], start, start + timedelta(days=1), ctx)
    assert [o.status for o in report.outcomes] == ["failed", "failed"]
    reason = report.outcomes[0].reason
    assert "lacks variable(s) ssrd (surface solar radiation downwards)" in reason
    assert "fetch the day again once the CDS delivers every variable" in reason
    cached = reason.split("(delete ")[1].split(" first")[0]
    assert Path(cached).is_file()  # the message names the cached answer to delete
    assert not [r for r in caplog.records if r.exc_info], "no traceback: a clear failure"
    # days before the drift are delivered whole
    earlier = fetch_range(["era5"], start - timedelta(days=1), start - timedelta(days=1), ctx)
    assert earlier.outcomes[0].status == "fetched"
    assert "ssrd_sum" in ctx.store.open_staged("era5", start - timedelta(days=1))


def test_ingest_stages_a_missing_mswep_region_as_nan(twin: Twin, tmp_path: Path) -> None:
    day = date(2024, 7, 15)
    twin.set_scenario(_scenario({"kind": "mswep_missing", "start": str(day), "region": HALF}))
    ctx = _context(twin, tmp_path / "data")
    report = fetch_range(["mswep"], day, day, ctx)
    assert report.outcomes[0].status == "fetched", report.outcomes
    rain = ctx.store.open_staged("mswep", day)["precipitation"]
    inside = ((rain.lat <= 35.5) & (rain.lon <= -99.5)).values
    assert np.isnan(rain.values[inside]).all() and inside.sum() == 4
    assert np.isfinite(rain.values[~inside]).all()


# -- how the innovations respond ------------------------------------------------------------------

CYCLE = (date(2015, 6, 16), date(2015, 7, 15))
"""Days cycled with and without each scenario (the drifts start at SWITCH, in the middle)."""
GAIN = 0.15


@dataclass(frozen=True)
class Run:
    """One cycle over CYCLE: the results and the staged SMAP used."""

    results: list[CycleResult]

    @property
    def after(self) -> np.ndarray:
        return np.array([r.day >= SWITCH for r in self.results])

    def innovation(self) -> np.ndarray:
        """Mean O−F per day (m3 m-3, NaN without observations)."""
        inn = [r.innovations.values for r in self.results]
        return np.array([np.nanmean(v) if np.isfinite(v).any() else np.nan for v in inn])

    def forecast(self) -> np.ndarray:
        return np.array([np.nanmean(r.forecast.values) for r in self.results])


def _cycle(store: Store, bundle: ModelBundle) -> Run:
    days = [CYCLE[0] + timedelta(days=i) for i in range((CYCLE[1] - CYCLE[0]).days + 1)]
    inputs = [day_inputs(store, d, bundle.spec.history_days) for d in days]
    state = climatology_state(bundle, inputs[0].static, days[0] - timedelta(days=1))
    return Run(list(run(state, inputs, bundle, gain=GAIN)))


@dataclass(frozen=True)
class Trained:
    bundle: ModelBundle
    store: Store
    baseline: Run


@pytest.fixture(scope="module")
def trained(world: World, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """A tiny model trained on the clean world, and the clean cycle over CYCLE."""
    store = Store(tmp_path_factory.mktemp("scenario") / "clean", world.grid)
    stage_world(store, world, START, CYCLE[1])
    bundle = train_from_store(store, START, END, config=FAST, min_n=20).bundle
    return Trained(bundle, store, _cycle(store, bundle))


Drifted = Callable[..., Run]


@pytest.fixture
def drifted(world: World, trained: Trained, tmp_path: Path) -> Drifted:
    """Cycle the trained model over the world staged under a scenario (the days before the
    drifts start are checked to be those of the clean cycle)."""

    def cycle(*drifts: dict[str, object]) -> Run:
        store = Store(tmp_path / "drifted", world.grid)
        served = ScenarioWorld(world, _scenario(*drifts))
        stage_world(store, served, *CYCLE, sources=("era5", "mswep", "smap"))  # type: ignore[arg-type]
        result = _cycle(store, trained.bundle)
        base = trained.baseline
        before = ~result.after
        np.testing.assert_array_equal(result.forecast()[before], base.forecast()[before])
        np.testing.assert_array_equal(result.innovation()[before], base.innovation()[before])
        return result

    return cycle


def _mean_change(run: Run, base: Run, series: str) -> float:
    after = run.after
    return float(np.nanmean(getattr(run, series)()[after] - getattr(base, series)()[after]))


def test_smap_bias_raises_the_innovations(trained: Trained, drifted: Drifted) -> None:
    bias = 0.05
    result = drifted({"kind": "smap_bias", "start": str(SWITCH), "bias": bias})
    # what CDF matching makes of +bias on these days' retrievals: bias × the matching slope
    cdf, shift = trained.bundle.cdf, []
    assert cdf is not None
    for r in trained.baseline.results:
        if r.day < SWITCH:
            continue
        smap = day_inputs(trained.store, r.day, trained.bundle.spec.history_days).smap
        if smap is None:
            continue
        raw = smap["soil_moisture"].values.reshape(-1)
        lat, lon = np.meshgrid(smap.lat.values, smap.lon.values, indexing="ij")
        ids = global_cell_ids(lat.reshape(-1), lon.reshape(-1))
        o0, ok = cdf_match(raw, ids, cdf)
        o1, _ = cdf_match(raw + bias, ids, cdf)
        shift.extend((o1 - o0)[ok])
    expected = float(np.mean(shift))
    change = _mean_change(result, trained.baseline, "innovation")
    print(f"SMAP +{bias}: CDF-matched obs +{expected:.4f}, mean O-F +{change:.4f}")
    assert 0.2 * bias < expected < 1.5 * bias
    # the nudged state moves toward the biased obs a little, so O−F rises a bit less than O*
    assert 0.5 * expected < change < 1.05 * expected
    assert _mean_change(result, trained.baseline, "forecast") > 0


def test_drier_mswep_dries_the_forecast_and_raises_the_innovations(
    trained: Trained, drifted: Drifted
) -> None:
    result = drifted({"kind": "mswep_bias", "start": str(SWITCH), "factor": 0.3})
    forecast = _mean_change(result, trained.baseline, "forecast")
    innovation = _mean_change(result, trained.baseline, "innovation")
    print(f"MSWEP × 0.3: mean forecast {forecast:+.4f}, mean O-F {innovation:+.4f}")
    assert forecast < -0.005 and innovation > 0.005


def test_era5_t2m_shift_changes_the_forecast(trained: Trained, drifted: Drifted) -> None:
    result = drifted({"kind": "era5_shift", "start": str(SWITCH), "variable": "t2m", "offset": 3.0})
    after = result.after
    change = result.forecast()[after] - trained.baseline.forecast()[after]
    innovation = _mean_change(result, trained.baseline, "innovation")
    print(f"ERA5 t2m +3 K: mean forecast {change.mean():+.4f}, mean O-F {innovation:+.4f}")
    assert np.all(change != 0) and abs(change.mean()) > 0.001
    assert innovation == pytest.approx(-change.mean(), abs=0.003)  # the obs did not move


def test_missing_mswep_region_leaves_a_finite_forecast(trained: Trained, drifted: Drifted) -> None:
    result = drifted({"kind": "mswep_missing", "start": str(SWITCH), "region": HALF})
    assert all(np.isfinite(r.forecast.values).all() for r in result.results)
    inside = (result.results[0].forecast.lat <= 35.5) & (result.results[0].forecast.lon <= -99.5)
    after = [r for r, a in zip(result.results, result.after, strict=True) if a]
    base = [r for r, a in zip(trained.baseline.results, result.after, strict=True) if a]
    moved_in = np.mean(
        [
            np.abs(r.forecast - b.forecast).where(inside).mean()
            for r, b in zip(after, base, strict=True)
        ]
    )
    moved_out = np.mean(
        [
            np.abs(r.forecast - b.forecast).where(~inside).mean()
            for r, b in zip(after, base, strict=True)
        ]
    )
    print(
        f"MSWEP region missing: mean |forecast change| inside {moved_in:.4f}, outside {moved_out:.4f}"
    )
    assert moved_in > 0.002 and moved_in > 3 * moved_out
