"""The state chain: round trip, byte-identical reruns, invalidation, atomic commits, clear errors —
on a local folder and on fsspec's in-memory filesystem."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import fsspec
import numpy as np
import pytest
import xarray as xr
from state_helpers import provenance, small_result, small_uncertainty

from smda.errors import MalformedFile, SmdaError
from smda.storage.chain import STATE_VARIABLES, StateChain, StateMissing

D0 = date(2024, 7, 1)


@pytest.fixture(params=["local", "memory"])
def chain(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateChain]:
    if request.param == "local":
        yield StateChain(tmp_path / "state" / "r0.25_216_320_4x4")
        return
    url = f"memory://smda-test-{uuid.uuid4().hex}/state"
    yield StateChain(url)
    fs = fsspec.filesystem("memory")
    top = url.removeprefix("memory://").split("/")[0]
    if fs.exists(top):
        fs.rm(top, recursive=True)


def write_day(chain: StateChain, day: date, **prov: object) -> str:
    result = small_result(day)
    return chain.write(result, uncertainty=small_uncertainty(result), provenance=provenance(**prov))


def raw(chain: StateChain, day: date, suffix: str) -> bytes:
    data: bytes = chain.fs.cat_file(f"{chain.root}/{day:%Y}/state_{day:%Y%m%d}.{suffix}")
    return data


def test_round_trip(chain: StateChain) -> None:
    days = [D0 + timedelta(days=i) for i in range(3)]
    assert chain.days() == [] and chain.last() is None
    for day in days:
        write_day(chain, day)
    assert chain.days() == days and chain.last() == days[-1]
    assert chain.has(days[1]) and not chain.has(days[-1] + timedelta(days=1))

    result = small_result(days[1])
    ds = chain.read(days[1])
    assert set(STATE_VARIABLES) <= set(ds.data_vars)
    for name in ("analysis", "forecast", "innovations", "flags", "obs_count"):
        expected = getattr(result, name)
        np.testing.assert_array_equal(ds[name].values, expected.values)  # exact, NaN included
        assert ds[name].dtype == expected.dtype
    np.testing.assert_array_equal(ds["uncertainty"].values, small_uncertainty(result).values)
    np.testing.assert_array_equal(ds["lat"].values, result.analysis["lat"].values)
    xr.testing.assert_identical(chain.state(days[1]), ds["analysis"])
    assert ds["analysis"].attrs["units"] == "m3 m-3"
    assert ds.attrs["smda_day"] == days[1].isoformat()
    assert json.loads(ds.attrs["smda_provenance"]) == provenance()
    assert chain.provenance(days[1]) == provenance()


def test_files_follow_the_documented_layout(tmp_path: Path) -> None:
    chain = StateChain(tmp_path / "state")
    location = write_day(chain, D0)
    assert location == str(tmp_path / "state" / "2024" / "state_20240701.nc")
    assert sorted(p.name for p in (tmp_path / "state" / "2024").iterdir()) == [
        "state_20240701.json",
        "state_20240701.nc",
    ]
    sidecar = json.loads((tmp_path / "state" / "2024" / "state_20240701.json").read_text())
    assert sidecar["provenance"] == provenance()
    assert sidecar["sha256"] == hashlib.sha256(Path(location).read_bytes()).hexdigest()


def test_memory_location_is_a_url() -> None:
    chain = StateChain(f"memory://smda-test-{uuid.uuid4().hex}")
    try:
        assert write_day(chain, D0).startswith("memory://")
    finally:
        chain.fs.rm(chain.root, recursive=True)


def test_rewrite_is_byte_identical(chain: StateChain) -> None:
    write_day(chain, D0)
    first = raw(chain, D0, "nc"), raw(chain, D0, "json")
    time.sleep(1.1)  # a timestamp with one-second resolution would now differ
    write_day(chain, D0)
    assert (raw(chain, D0, "nc"), raw(chain, D0, "json")) == first


def test_two_chains_get_the_same_bytes(tmp_path: Path) -> None:
    a, b = StateChain(tmp_path / "a"), StateChain(tmp_path / "b")
    write_day(a, D0)
    write_day(b, D0)
    assert raw(a, D0, "nc") == raw(b, D0, "nc")


def test_same_provenance(chain: StateChain) -> None:
    assert not chain.same_provenance(D0, provenance())
    write_day(chain, D0)
    assert chain.same_provenance(D0, provenance())
    assert chain.same_provenance(D0, dict(reversed(list(provenance().items()))))
    assert not chain.same_provenance(D0, provenance(provisional=False))
    assert not chain.same_provenance(D0, provenance(model_version="fedcba9876543210"))


def test_dates_in_provenance_are_stored_as_iso_strings(chain: StateChain) -> None:
    write_day(chain, D0, inputs_checked=date(2024, 7, 6))
    assert chain.provenance(D0)["inputs_checked"] == "2024-07-06"
    assert chain.same_provenance(D0, provenance(inputs_checked=date(2024, 7, 6)))


def test_unserialisable_provenance_is_refused(chain: StateChain) -> None:
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        write_day(chain, D0, bundle=object())
    assert not chain.has(D0)


def test_invalidate_after_removes_later_days(chain: StateChain) -> None:
    days = [D0 + timedelta(days=i) for i in range(5)]
    for day in days:
        write_day(chain, day)
    assert chain.invalidate_after(days[1]) == days[2:]
    assert chain.days() == days[:2] and chain.last() == days[1]
    for day in days[2:]:
        assert not chain.has(day)
        assert not chain.fs.exists(f"{chain.root}/{day:%Y}/state_{day:%Y%m%d}.nc")
    assert chain.invalidate_after(days[1]) == []
    np.testing.assert_array_equal(chain.state(days[1]), small_result(days[1]).analysis)


def test_days_span_years(chain: StateChain) -> None:
    days = [date(2023, 12, 31), date(2024, 1, 1)]
    for day in days:
        write_day(chain, day)
    assert chain.days() == days


def test_missing_day_says_backfill(chain: StateChain) -> None:
    write_day(chain, D0)
    with pytest.raises(StateMissing, match=r"2024-07-02.*last day is 2024-07-01.*backfill") as err:
        chain.read(D0 + timedelta(days=1))
    assert isinstance(err.value, SmdaError) and isinstance(err.value, FileNotFoundError)
    with pytest.raises(StateMissing):
        chain.provenance(D0 + timedelta(days=1))


def test_corrupt_file_is_malformed_and_says_rerun(chain: StateChain) -> None:
    write_day(chain, D0)
    key = f"{chain.root}/2024/state_20240701.nc"
    chain.fs.pipe_file(key, raw(chain, D0, "nc")[:1000])  # truncated
    with pytest.raises(MalformedFile, match=r"state_20240701\.nc.*re-run the day 2024-07-01"):
        chain.read(D0)


def test_unreadable_file_matching_its_sidecar_is_malformed(chain: StateChain) -> None:
    write_day(chain, D0)
    garbage = b"not a netCDF file" * 10
    chain.fs.pipe_file(f"{chain.root}/2024/state_20240701.nc", garbage)
    sidecar = json.loads(raw(chain, D0, "json"))
    sidecar["sha256"] = hashlib.sha256(garbage).hexdigest()
    chain.fs.pipe_file(f"{chain.root}/2024/state_20240701.json", json.dumps(sidecar).encode())
    with pytest.raises(MalformedFile, match=r"netCDF4 cannot read it.*re-run the day"):
        chain.read(D0)


def test_missing_file_behind_a_sidecar_is_malformed(chain: StateChain) -> None:
    write_day(chain, D0)
    chain.fs.rm(f"{chain.root}/2024/state_20240701.nc")
    with pytest.raises(MalformedFile, match="the file is missing"):
        chain.read(D0)


def test_corrupt_sidecar_is_malformed(chain: StateChain) -> None:
    write_day(chain, D0)
    chain.fs.pipe_file(f"{chain.root}/2024/state_20240701.json", b"{not json")
    with pytest.raises(MalformedFile, match=r"state_20240701\.json.*re-run the day"):
        chain.provenance(D0)


def test_crash_before_the_sidecar_leaves_no_day(
    chain: StateChain, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_day(chain, D0)

    def crash(self: StateChain, key: str, text: str) -> None:
        raise RuntimeError("killed after the netCDF, before the sidecar")

    monkeypatch.setattr(StateChain, "_put_bytes", crash)
    day = D0 + timedelta(days=1)
    with pytest.raises(RuntimeError, match="killed"):
        write_day(chain, day)
    assert not chain.has(day) and chain.days() == [D0]
    with pytest.raises(StateMissing):
        chain.read(day)
    # re-writing an existing day uncommits it first: no old sidecar over a new file
    with pytest.raises(RuntimeError, match="killed"):
        write_day(chain, D0, model_version="fedcba9876543210")
    assert not chain.has(D0)


def test_crash_inside_the_netcdf_write_leaves_nothing(
    chain: StateChain, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(self: xr.Dataset, path: Path, **kwargs: object) -> None:
        Path(path).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", crash)
    with pytest.raises(OSError, match="disk full"):
        write_day(chain, D0)
    assert not chain.has(D0)
    assert chain.fs.find(chain.root) == []  # no partial file, no temporary left behind


def test_field_off_the_analysis_grid_is_refused(chain: StateChain) -> None:
    result = small_result(D0)
    with pytest.raises(ValueError, match="uncertainty of 2024-07-01 is not on the analysis grid"):
        chain.write(
            result, uncertainty=small_uncertainty(result).isel(lat=slice(0, 2)), provenance={}
        )
