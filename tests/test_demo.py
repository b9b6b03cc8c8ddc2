"""The README's run command, end to end, as a new user runs it (slow)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import pytest
import xarray as xr


@pytest.mark.slow
def test_smda_demo_fetches_one_day_through_the_real_clients(tmp_path: Path) -> None:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("CDSAPI", "EARTHDATA", "SMDA_"))
    }
    env.update(SMDA_DATA_DIR=str(tmp_path / "data"), HOME=str(tmp_path), SMDA_LOG_LEVEL="WARNING")
    result = subprocess.run(
        [sys.executable, "-m", "smda", "demo"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        check=False,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    raw = tmp_path / "data" / "raw"
    era5 = sorted((raw / "era5").glob("era5_[0-9]*.zip"))
    smap = sorted((raw / "smap").glob("SMAP_L3_SM_P_E_*.h5"))
    mswep = sorted((raw / "mswep").glob("*.nc"))
    assert len(era5) == 1 and len(smap) == 1 and len(mswep) == 1, result.stdout
    with zipfile.ZipFile(era5[0]) as zf:  # instant + accumulated variables → the CDS ZIP
        assert sorted(zf.namelist()) == [
            "data_stream-oper_stepType-accum.nc",
            "data_stream-oper_stepType-instant.nc",
        ]
    with h5py.File(smap[0]) as f:
        assert "soil_moisture_pm" in f["Soil_Moisture_Retrieval_Data_PM"]
    with xr.open_dataset(mswep[0]) as ds:
        assert "precipitation" in ds
    assert "fetched" in result.stdout
    assert not list(raw.rglob("*.part")), "no temporary files may be left behind"
