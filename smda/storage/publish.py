"""Publishing a day: one Cloud-Optimized GeoTIFF and one STAC item, under a root folder.

The COG is described in :mod:`smda.storage.cog`, the STAC tree and its layout in
:mod:`smda.storage.stac`, the provenance they carry (secrets removed) in
:mod:`smda.storage.provenance`.

Everything is written atomically (temporary sibling, then rename), and the same inputs give
byte-identical files. Publishing a day writes its COG and item and rewrites only the
collection (its extent and one link per day, ~120 bytes a day) and the catalog — never the
other days' items.

One writer per root: the operations that publish hold the writer lock of the region's chain
(:mod:`smda.storage.locks`); the collection's read-modify-write is also locked on its own.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import rasterio
import xarray as xr

from smda.storage.cog import BANDS, BandSpec, cog_bands, cog_tags, grid_of, write_cog
from smda.storage.integrity import file_digest, multihash
from smda.storage.locks import locked_file
from smda.storage.provenance import public_provenance
from smda.storage.stac import (
    COLLECTION_ID,
    ProductTree,
    add_cog_asset,
    day_item,
    extent_union,
    linked_days,
    write_catalog,
    write_collection,
    write_json,
)

__all__ = ["BANDS", "COLLECTION_ID", "BandSpec", "PublishedDay", "Publisher", "public_provenance"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PublishedDay:
    """Where a published day's files are."""

    cog: Path
    item: Path


class Publisher:
    """Publishes days as COGs and a STAC catalog under ``root`` (see the module docstring).

    Parameters
    ----------
    root:
        Local folder of the published products.
    base_url:
        Public URL at which ``root`` is served (e.g. ``https://data.example.org/smda``): asset
        hrefs become absolute URLs and documents get ``self`` links. Without it the catalog is
        self-contained (relative links only).
    license:
        License of the product (SPDX identifier, or ``other``): it derives from ERA5
        (Copernicus licence), SMAP (NASA, open) and MSWEP (GloH2O terms).
    """

    def __init__(
        self, root: Path | str, *, base_url: str | None = None, license: str = "other"
    ) -> None:
        self.tree = ProductTree(Path(root), base_url.rstrip("/") if base_url else None)
        self.license = license
        self._lock = threading.Lock()

    # -- layout ---------------------------------------------------------------------------------
    @property
    def root(self) -> Path:
        return self.tree.root

    @property
    def base_url(self) -> str | None:
        return self.tree.base_url

    @property
    def catalog_path(self) -> Path:
        return self.tree.catalog_path

    @property
    def collection_path(self) -> Path:
        return self.tree.collection_path

    def cog_path(self, day: date) -> Path:
        return self.tree.cog_path(day)

    def item_path(self, day: date) -> Path:
        return self.tree.item_path(day)

    # -- publishing -----------------------------------------------------------------------------
    def publish(
        self, day: date, dataset: xr.Dataset, provenance: Mapping[str, Any]
    ) -> PublishedDay:
        """Publish the state of ``day`` (a :meth:`smda.storage.chain.StateChain.read` dataset).

        Parameters
        ----------
        day:
            The day.
        dataset:
            ``analysis``, ``uncertainty``, ``obs_count``, ``flags`` (lat, lon) on a north-up
            window of the global grid.
        provenance:
            What made the day (model version, inputs, code version); secrets are dropped.

        Raises
        ------
        ValueError
            If a variable is missing, the grid is not a window of the global grid, or the
            dataset is of another day.
        """
        stored_day = dataset.attrs.get("smda_day")
        if stored_day is not None and stored_day != day.isoformat():
            raise ValueError(f"the dataset is the state of {stored_day}, not of {day}")
        if dataset["lat"].size > 1 and dataset["lat"].values[0] < dataset["lat"].values[-1]:
            dataset = dataset.isel(lat=slice(None, None, -1))
        grid = grid_of(dataset)
        public = public_provenance(provenance)
        write_cog(self.cog_path(day), cog_bands(dataset), grid, cog_tags(day, public))
        forecast_only = bool(dataset.attrs.get("smda_forecast_only", 0))
        item = day_item(self.tree, day, grid, public, forecast_only=forecast_only)
        add_cog_asset(item, self.tree, day, file_digest(self.cog_path(day)))
        write_json(self.item_path(day), item.to_dict(include_self_link=True, transform_hrefs=False))
        with self._lock, locked_file(self.collection_path):  # other processes too
            current = self.tree.read_collection()
            days = sorted({*linked_days(current), day})
            write_collection(self.tree, days, extent_union(current, grid), license=self.license)
            write_catalog(self.tree)
        log.info("published %s: %s", day, self.cog_path(day))
        return PublishedDay(cog=self.cog_path(day), item=self.item_path(day))

    def unpublish(self, days: Iterable[date]) -> list[date]:
        """Withdraw days: their collection links first, then their items and COGs.

        Returns
        -------
        The days that had been published, ascending.
        """
        drop = set(days)
        removed = sorted(d for d in drop if self.item_path(d).exists() or self.cog_path(d).exists())
        with self._lock, locked_file(self.collection_path):  # other processes too
            current = self.tree.read_collection()
            if current is not None:
                remaining = [d for d in linked_days(current) if d not in drop]
                bbox = current["extent"]["spatial"]["bbox"][0]
                write_collection(self.tree, remaining, bbox, license=self.license)
        for d in removed:
            self.item_path(d).unlink(missing_ok=True)
            self.cog_path(d).unlink(missing_ok=True)
        if removed:
            log.info("unpublished %d days from %s", len(removed), self.root)
        return removed

    def problem(self, day: date) -> str | None:
        """What is wrong with the published ``day``: None when the COG matches its item's
        ``file:size`` and ``file:checksum`` (older items: when GDAL reads it)."""
        cog, item_path = self.cog_path(day), self.item_path(day)
        if not cog.exists() or not item_path.exists():
            return "COG or STAC item missing"
        try:
            asset: dict[str, Any] = json.loads(item_path.read_text())["assets"]["data"]
        except (OSError, ValueError, KeyError) as exc:
            return f"the STAC item is unreadable ({exc})"
        if (got := file_digest(cog)) is None:
            return "COG missing"
        if "file:checksum" in asset:
            if asset.get("file:size") != got[1] or asset["file:checksum"] != multihash(got[0]):
                return "the COG's size or SHA-256 differs from its STAC item's file:checksum"
            return None
        try:
            with rasterio.open(cog) as src:
                src.read(1, out_shape=(1, 1))
        except Exception as exc:  # any GDAL failure means an unreadable COG
            return f"GDAL cannot read the COG ({exc})"
        return None

    def published_days(self) -> list[date]:
        """The days linked from the collection, ascending."""
        return linked_days(self.tree.read_collection())
