"""A period as a cube: the state files open as one with ``xr.open_mfdataset``; ``smda export``
writes the same values as a CF cube (netCDF or Zarr) with each day's provenance."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from ops_runtime import LAST, RUN
from typer.testing import CliRunner

from smda.cli import app
from smda.errors import SmdaError
from smda.ops import Runtime, backfill_days
from smda.ops.export import EXPORTED, export_cube
from smda_twin.world import World


def _same_as_chain(rt: Runtime, cube: xr.Dataset) -> None:
    days = [d for d in rt.chain.days() if np.datetime64(d) in cube["time"].values]
    assert days
    for day in days:
        state = rt.chain.read(day)
        at = cube.sel(time=np.datetime64(day, "ns"))
        for name in EXPORTED:
            np.testing.assert_array_equal(at[name].values, state[name].values)
            assert at[name].dtype == state[name].dtype


def test_the_state_files_open_as_one_cube(rt: Runtime) -> None:
    backfill_days(rt, RUN, LAST)
    files = sorted(Path(rt.chain.url).glob("*/state_*.nc"))
    with xr.open_mfdataset(files) as cube:
        assert cube["analysis"].dims == ("time", "lat", "lon")
        assert [str(t)[:10] for t in cube["time"].values] == [
            (RUN + timedelta(days=i)).isoformat() for i in range((LAST - RUN).days + 1)
        ]
        assert cube["time"].attrs["standard_name"] == "time"
        _same_as_chain(rt, cube.load())


@pytest.mark.parametrize("fmt", ["netcdf", "zarr"])
def test_export_writes_the_chain_as_a_cf_cube(rt: Runtime, tmp_path: Path, fmt: str) -> None:
    backfill_days(rt, RUN, LAST)
    out = tmp_path / ("cube.nc" if fmt == "netcdf" else "cube.zarr")
    result = export_cube(rt, RUN + timedelta(days=1), LAST, out, fmt=fmt)  # type: ignore[arg-type]
    assert result.days[0] == RUN + timedelta(days=1) and result.gaps == []
    opened = xr.open_dataset(out) if fmt == "netcdf" else xr.open_zarr(out)
    with opened as cube:
        assert cube.attrs["Conventions"] == "CF-1.8"
        assert cube.sizes["time"] == (LAST - RUN).days
        assert cube["flags"].dtype == np.uint8 and "flag_meanings" in cube["flags"].attrs
        assert cube["analysis"].attrs["units"] == "m3 m-3"
        provenance = json.loads(str(cube["provenance"].values[0]))
        assert provenance["day"] == (RUN + timedelta(days=1)).isoformat()
        _same_as_chain(rt, cube.load())
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # nothing half-written


def test_export_of_a_period_outside_the_chain_says_to_backfill(rt: Runtime, tmp_path: Path) -> None:
    with pytest.raises(SmdaError, match="smda backfill --start"):
        export_cube(rt, RUN, LAST, tmp_path / "cube.nc")


def test_cli_export(
    rt: Runtime, world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backfill_days(rt, RUN, RUN + timedelta(days=1))
    monkeypatch.setenv("SMDA_DATA_DIR", str(rt.settings.data_dir))
    monkeypatch.setenv("SMDA_SPINUP_DAYS", "3")
    region = str(world.spec.region)
    out = tmp_path / "out.nc"
    result = CliRunner().invoke(
        app, ["export", str(out), "--start", str(RUN), "--end", str(LAST), f"--region={region}"]
    )
    assert result.exit_code == 0, result.output
    with xr.open_dataset(out) as cube:
        assert cube.sizes["time"] == 2
