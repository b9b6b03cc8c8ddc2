"""The store: atomic staged writes with provenance, the ledger and its history."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from smda.errors import MalformedFile
from smda.geo.grid import GLOBAL_025, BBox
from smda.storage.store import RawFile, Store, region_key

GRID = GLOBAL_025.subset(BBox(-105, 30, -95, 40))


def _data(value: float) -> xr.Dataset:
    return xr.Dataset(
        {"x": (("lat", "lon"), np.full(GRID.shape, value, np.float32))},
        coords={"lat": GRID.lats, "lon": GRID.lons},
    )


def _raw(tmp: Path, name: str, content: bytes, provisional: bool = False) -> RawFile:
    path = tmp / name
    path.write_bytes(content)
    import hashlib

    return RawFile(
        path, name, len(content), hashlib.sha256(content).hexdigest(), "v1", provisional=provisional
    )


def test_region_keys() -> None:
    assert region_key(GLOBAL_025) == "global"
    assert region_key(GRID) == "r0.25_200_300_40x40"


def test_write_staged_records_provenance_and_history(tmp_path: Path) -> None:
    store = Store(tmp_path / "data", GRID)
    day = date(2024, 7, 1)
    first = store.write_staged(
        "era5", day, _data(1.0), [_raw(tmp_path, "a.nc", b"a", provisional=True)], request={"k": 1}
    )
    assert first.provisional and store.staged_days("era5") == [day]
    ds = store.open_staged("era5", day)
    prov = json.loads(ds.attrs["smda_provenance"])
    assert prov["files"][0]["name"] == "a.nc" and prov["request"] == {"k": 1}
    second = store.write_staged("era5", day, _data(2.0), [_raw(tmp_path, "b.nc", b"b")])
    assert not second.provisional and len(second.history) == 1
    assert second.history[0]["previous_provisional"] is True
    reopened = Store(tmp_path / "data", GRID).ledger("era5").get(day)
    assert reopened is not None and reopened.sha256 == second.sha256 and len(reopened.history) == 1


def test_failed_write_keeps_previous_file(tmp_path: Path) -> None:
    store = Store(tmp_path / "data", GRID)
    day = date(2024, 7, 1)
    store.write_staged("era5", day, _data(1.0), [_raw(tmp_path, "a.nc", b"a")])
    before = store.staged_path("era5", day).read_bytes()
    bad = _data(2.0).assign(y=(("lat", "lon"), np.full(GRID.shape, object())))
    with pytest.raises(Exception):  # noqa: B017 - any writer failure
        store.write_staged("era5", day, bad, [_raw(tmp_path, "b.nc", b"b")])
    assert store.staged_path("era5", day).read_bytes() == before
    assert not list((tmp_path / "data").rglob("*.part"))


def test_corrupt_ledger_is_a_clear_error(tmp_path: Path) -> None:
    store = Store(tmp_path / "data", GRID)
    path = tmp_path / "data" / "ledger" / store.region / "era5.json"
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(MalformedFile, match="move it away"):
        store.ledger("era5")


def test_open_missing_day_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="smda fetch era5"):
        Store(tmp_path, GRID).open_staged("era5", date(2024, 1, 1))


def test_atomic_writes_get_the_umask_mode_not_mkstemps_0600(tmp_path: Path) -> None:
    import os
    import stat

    from smda.storage.atomic import atomic_write_bytes

    umask = os.umask(0o022)
    os.umask(umask)
    atomic_write_bytes(tmp_path / "a.txt", b"x")
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o666 & ~umask
    assert 0o666 & ~umask != 0o600  # the test means something under this umask
    atomic_write_bytes(tmp_path / "b.txt", b"x", mode=0o600)
    assert stat.S_IMODE((tmp_path / "b.txt").stat().st_mode) == 0o600
