"""ISMN in-situ stations from an ISMN download (folder or zip) on local disk.

ISMN data are downloaded by hand from the ISMN portal (free registration), so this source has
no provider to poll: it reads the download given with ``--ismn PATH`` through the ``ismn``
package's file handlers, keeps surface sensors (0–5 cm) and good-flagged (``G``) hourly values,
averages them to UTC days, and stages, per day, the stations inside the region as a
``(station)`` dataset with their coordinates and the grid cell each falls in.
"""

from __future__ import annotations

import hashlib
import tempfile
from datetime import date
from pathlib import Path
from typing import ClassVar

import numpy as np
import xarray as xr

from smda.errors import ConfigError
from smda.ingest.readers.ismn import IsmnStation, read_ismn
from smda.ingest.sources.base import FetchTask, IngestContext, Source
from smda.storage.store import RawFile, sha256_file

__all__ = ["IsmnSource"]


def _digest(path: Path) -> str:
    if path.is_file():
        return sha256_file(path)
    digest = hashlib.sha256()
    for item in sorted(path.rglob("*.stm")):
        digest.update(
            f"{item.relative_to(path)}:{item.stat().st_size}:{item.stat().st_mtime_ns}".encode()
        )
    return digest.hexdigest()


class IsmnSource(Source):
    name: ClassVar[str] = "ismn"
    provider: ClassVar[str] = "local"
    description: ClassVar[str] = (
        "ISMN in-situ surface soil moisture (a local ISMN download), daily means"
    )
    max_days_per_task: ClassVar[int] = 366
    remote: ClassVar[bool] = False

    def _path(self, ctx: IngestContext) -> Path:
        if ctx.ismn_path is None:
            raise ConfigError(
                "the ismn source reads a local ISMN download: pass --ismn PATH (folder or zip)"
            )
        if not ctx.ismn_path.exists():
            raise ConfigError(f"ISMN download {ctx.ismn_path} does not exist")
        return ctx.ismn_path

    def stations(self, ctx: IngestContext) -> list[IsmnStation]:
        """The surface sensors of the download that lie inside the region (read once per run)."""
        path = self._path(ctx)

        def read() -> list[IsmnStation]:
            with tempfile.TemporaryDirectory(prefix="smda-ismn-") as work:
                stations = read_ismn(path, workdir=Path(work))
            _, _, inside = ctx.grid.locate(
                np.array([s.lat for s in stations]), np.array([s.lon for s in stations])
            )
            return [s for s, ok in zip(stations, inside, strict=True) if ok]

        stations: list[IsmnStation] = ctx.memo(f"ismn:{path}", read)
        return stations

    def newest_available(self, ctx: IngestContext) -> date | None:
        last = [s.soil_moisture.index.max() for s in self.stations(ctx) if len(s.soil_moisture)]
        return max(last).date() if last else None

    def fetch(self, task: FetchTask, ctx: IngestContext) -> dict[date, list[RawFile]]:
        path = self._path(ctx)
        stations = self.stations(ctx)
        source_digest = ctx.memo(f"ismn-digest:{path}", lambda: _digest(path))
        out: dict[date, list[RawFile]] = {}
        for day in task.days:
            values = self._values(stations, day)
            if not np.isfinite(values).any():
                continue
            out[day] = [
                RawFile(
                    path=path,
                    name=path.name,
                    size=path.stat().st_size,
                    sha256=source_digest,
                    part=day.isoformat(),
                    part_sha256=hashlib.sha256(values.tobytes()).hexdigest(),
                )
            ]
        return out

    @staticmethod
    def _values(stations: list[IsmnStation], day: date) -> np.ndarray:
        stamp = np.datetime64(day, "ns")
        return np.array(
            [float(s.soil_moisture.get(stamp, np.nan)) for s in stations], dtype=np.float32
        )

    def stage(self, day: date, files: list[RawFile], ctx: IngestContext) -> xr.Dataset:
        stations = self.stations(ctx)
        values = self._values(stations, day)
        keep = np.isfinite(values)
        chosen = [s for s, k in zip(stations, keep, strict=True) if k]
        rows, cols, _ = ctx.grid.locate(
            np.array([s.lat for s in chosen]), np.array([s.lon for s in chosen])
        )
        return xr.Dataset(
            {
                "soil_moisture": (
                    "station",
                    values[keep],
                    {
                        "units": "m3 m-3",
                        "long_name": "daily mean in-situ surface soil moisture (ISMN, flag G)",
                    },
                ),
                "row": ("station", rows.astype(np.int32)),
                "col": ("station", cols.astype(np.int32)),
            },
            coords={
                "station": [f"{s.network}/{s.station}/{s.sensor}" for s in chosen],
                "lat": ("station", np.array([s.lat for s in chosen])),
                "lon": ("station", np.array([s.lon for s in chosen])),
                "depth_from": ("station", np.array([s.depth_from for s in chosen])),
                "depth_to": ("station", np.array([s.depth_to for s in chosen])),
            },
        )
