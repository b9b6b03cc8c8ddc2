"""Region folders: the key that names a region's folders, and the ``region.json`` inside them.

Every location of a region — ``state/<key>``, ``models/<key>``, ``products/<key>``,
``staged/<key>``, ``reports/<key>`` — is named by the key of its grid window
(:func:`region_key`): ``global``, or ``r<res>_<row0>_<col0>_<nrows>x<ncols>`` (the resolution
in degrees, the window's first row and column in the global grid and its shape, e.g.
``r0.25_200_300_40x40`` for 30–40° N, 105–95° W). The key is exact but opaque, so each such
folder holds a small ``region.json`` (:class:`RegionInfo`), written once and atomically the
first time a writer of the region holds its lock::

    {"format": 1, "key": "r0.25_200_300_40x40",
     "bbox": {"west": -105.0, "south": 30.0, "east": -95.0, "north": 40.0},
     "resolution_deg": 0.25, "grid_shape": {"lat": 40, "lon": 40},
     "grid_origin": {"row": 200, "col": 300}, "crs": "EPSG:4326"}

``bbox`` holds the outer edges of the window's cells; :func:`region_grid` of it is the window
again, exactly (:func:`key_bbox`), so a key given where a region is expected (``--region``)
selects the same grid as the box it was made from. Folders made before ``region.json``
existed are still read: their key alone gives the grid (:func:`grid_of_key`).
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from smda.geo.grid import BBox, Grid
from smda.geo.keys import KEY_FORM, grid_of_key, key_bbox, region_key
from smda.storage.atomic import atomic_create_bytes

__all__ = [
    "KEY_FORM",
    "REGION_FILE",
    "RegionInfo",
    "ensure_region_file",
    "find_regions",
    "grid_of_key",
    "key_bbox",
    "read_region_file",
    "region_key",
]

REGION_FILE = "region.json"
"""Name of the file that describes a region folder."""
REGION_FORMAT = 1
"""Version of the ``region.json`` layout."""


@dataclass(frozen=True)
class RegionInfo:
    """What a region folder is: its key, bounding box and grid (module docstring)."""

    key: str
    grid: Grid
    from_file: bool = False
    """Read from the folder's ``region.json`` (False: derived from the folder's name). The file
    holds no time, so every data directory of a region writes the same bytes."""

    @classmethod
    def of_grid(cls, grid: Grid) -> RegionInfo:
        return cls(region_key(grid), grid)

    @property
    def bbox(self) -> BBox:
        """The box that selects this grid (:func:`key_bbox`)."""
        return key_bbox(self.grid)

    def to_json(self) -> dict[str, Any]:
        """The ``region.json`` document (keys in snake_case, the bbox in degrees)."""
        box = self.bbox
        return {
            "format": REGION_FORMAT,
            "key": self.key,
            "bbox": {"west": box.west, "south": box.south, "east": box.east, "north": box.north},
            "resolution_deg": self.grid.res,
            "grid_shape": {"lat": self.grid.nrows, "lon": self.grid.ncols},
            "grid_origin": {"row": self.grid.row0, "col": self.grid.col0},
            "crs": Grid.crs,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RegionInfo:
        """Read a ``region.json`` document; the key decides the grid, the rest must agree.

        Raises
        ------
        ValueError
            If the key is not one, or the box or shape disagree with it.
        """
        grid = grid_of_key(str(data["key"]))
        info = cls(str(data["key"]), grid, from_file=True)
        shape = data.get("grid_shape", {})
        box = data.get("bbox", {})
        written = [box.get(k) for k in ("west", "south", "east", "north")]
        expected = info.to_json()["bbox"]
        if (shape.get("lat"), shape.get("lon")) != grid.shape or not all(
            isinstance(v, int | float) and math.isclose(v, expected[k], abs_tol=1e-9)
            for v, k in zip(written, ("west", "south", "east", "north"), strict=True)
        ):
            raise ValueError(f"its bbox or grid shape disagree with its key {info.key}")
        return info


def _fs(location: str | Path) -> tuple[fsspec.AbstractFileSystem, str]:
    fs, root = fsspec.core.url_to_fs(str(location))
    return fs, str(root).rstrip("/")


def ensure_region_file(location: str | Path, grid: Grid) -> bool:
    """Write ``<location>/region.json`` for ``grid`` unless it exists (written once,
    atomically; ``location`` a local folder or an fsspec URL, created when missing).

    Returns
    -------
    True when this call wrote it.
    """
    data = json.dumps(RegionInfo.of_grid(grid).to_json(), indent=1).encode()
    fs, root = _fs(location)
    if isinstance(fs, LocalFileSystem):
        return atomic_create_bytes(Path(root) / REGION_FILE, data)
    key = f"{root}/{REGION_FILE}"
    if fs.exists(key):
        return False
    part = f"{root}/.{REGION_FILE}.{uuid.uuid4().hex}.part"
    fs.makedirs(root, exist_ok=True)
    try:
        fs.pipe_file(part, data)
        fs.mv(part, key)
    finally:
        if fs.exists(part):
            fs.rm(part)
    return True


def read_region_file(location: str | Path) -> RegionInfo | None:
    """The ``region.json`` of a folder; None when it has none or it is unreadable."""
    fs, root = _fs(location)
    try:
        return RegionInfo.from_json(json.loads(fs.cat_file(f"{root}/{REGION_FILE}")))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def find_regions(roots: Iterable[str | Path]) -> dict[str, RegionInfo]:
    """The region folders under ``roots`` (e.g. ``<data_dir>/state``), by key, sorted: each
    folder whose name is a key, described by its ``region.json`` or else by the key alone.
    Roots that do not exist are skipped."""
    found: dict[str, RegionInfo] = {}
    for location in roots:
        fs, root = _fs(location)
        try:
            entries = fs.ls(root, detail=True)
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            name = str(entry["name"]).rstrip("/").rsplit("/", 1)[-1]
            if entry.get("type") != "directory" or name.startswith("."):
                continue
            try:
                grid = grid_of_key(name)
            except ValueError:
                continue
            known = found.get(name)
            if known is not None and known.from_file:
                continue
            info = read_region_file(f"{root}/{name}")
            ok = info is not None and info.key == name
            found[name] = info if info is not None and ok else known or RegionInfo(name, grid)
    return dict(sorted(found.items()))
