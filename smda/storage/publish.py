"""Publishing a day: two Cloud-Optimized GeoTIFFs, a quick-look PNG and one STAC item, under a
root folder.

The COGs are described in :mod:`smda.storage.cog`, the quick-look (the item's thumbnail) in
:mod:`smda.storage.quicklook`, the STAC tree and its layout in :mod:`smda.storage.stac`, the
provenance they carry (secrets removed) in :mod:`smda.storage.provenance`.

``root`` is a local folder or an object-storage URL (``s3://bucket/prefix``:
:mod:`smda.storage.objects`). Everything is written atomically (locally a temporary sibling,
then rename; on object storage a local temporary file uploaded to a temporary key, then copied
onto the final key), and the same inputs give byte-identical files wherever they go.
Publishing a day writes its COGs and item and rewrites only the collection (its extent and one
link per day, ~120 bytes a day) and the catalog — never the other days' items.

One writer per root: the operations that publish hold the writer lock of the region's chain
(:mod:`smda.storage.locks`); the collection's read-modify-write is also locked on its own
(locally: object storage has no locks, one writer per prefix is the operator's job).
"""

from __future__ import annotations

import functools
import json
import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import xarray as xr

from smda.geo.grid import Grid
from smda.storage.cog import BANDS, COGS, BandSpec, CogSpec, cog_bands, cog_tags, grid_of, write_cog
from smda.storage.integrity import file_digest, multihash
from smda.storage.objects import Files
from smda.storage.provenance import is_provisional, public_provenance
from smda.storage.stac import (
    COLLECTION_ID,
    ProductTree,
    add_cog_assets,
    add_thumbnail_asset,
    day_item,
    extent_union,
    linked_days,
    write_catalog,
    write_collection,
    write_json,
)

__all__ = ["BANDS", "COLLECTION_ID", "BandSpec", "PublishedDay", "Publisher", "public_provenance"]

log = logging.getLogger(__name__)

_COG = re.compile(r"smda_sm_(\d{8})(_[a-z]+)?\.tif$")


@dataclass(frozen=True)
class PublishedDay:
    """Where a published day's files are."""

    cog: Path
    item: Path
    quicklook: Path


class Publisher:
    """Publishes days as COGs and a STAC catalog under ``root`` (see the module docstring).

    Parameters
    ----------
    root:
        Folder of the published products: a local path or an fsspec URL (``s3://b/prefix``).
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
        self.store = Files.at(root)
        base = base_url.rstrip("/") if base_url else None
        self.tree = ProductTree(self.store.root, base, self.store)
        self.license = license
        self._lock = threading.Lock()

    # -- layout ---------------------------------------------------------------------------------
    @property
    def root(self) -> Path:
        """The tree's root path (on object storage not a local file: see :attr:`url`)."""
        return self.tree.root

    @property
    def url(self) -> str:
        """Where the products are: the local folder or the object-storage URL."""
        return self.store.url

    @property
    def is_local(self) -> bool:
        return self.store.is_local

    def location(self, path: Path) -> str:
        """Where the file ``path`` of the tree is, for people: a local path or a URL."""
        return self.store.location(path)

    def exists(self, path: Path) -> bool:
        """Whether the file ``path`` of the tree exists."""
        return self.store.exists(path)

    @property
    def base_url(self) -> str | None:
        return self.tree.base_url

    @property
    def catalog_path(self) -> Path:
        return self.tree.catalog_path

    @property
    def collection_path(self) -> Path:
        return self.tree.collection_path

    @property
    def catalog_href(self) -> str:
        """Where people open the catalog: its public URL, else its location."""
        return self.tree.url(self.catalog_path) or self.location(self.catalog_path)

    def cog_path(self, day: date, spec: CogSpec = COGS[0]) -> Path:
        """The COG ``spec`` (default: the data COG, analysis and uncertainty) of ``day``."""
        return self.tree.cog_path(day, spec)

    def item_path(self, day: date) -> Path:
        return self.tree.item_path(day)

    def quicklook_path(self, day: date) -> Path:
        """The quick-look PNG of ``day`` (the item's thumbnail), next to its COGs."""
        return self.tree.quicklook_path(day)

    def files(self, day: date) -> list[Path]:
        """The files of a published ``day``: its COGs, its quick-look, then its item."""
        cogs = [self.cog_path(day, spec) for spec in COGS]
        return [*cogs, self.quicklook_path(day), self.item_path(day)]

    def days_on_disk(self) -> list[date]:
        """The days that have a COG on disk (linked or not), ascending."""
        found = (_COG.search(p.name) for p in self.store.glob("cog/*/smda_sm_*.tif"))
        return sorted(
            {date(int(d[:4]), int(d[4:6]), int(d[6:8])) for m in found if m for d in [m[1]]}
        )

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
        digests = self._write_files(day, dataset, grid, public)
        item = day_item(
            self.tree,
            day,
            grid,
            public,
            forecast_only=bool(dataset.attrs.get("smda_forecast_only", 0)),
            provisional=is_provisional(public),
        )
        add_cog_assets(item, self.tree, day, digests)
        add_thumbnail_asset(item, self.tree, day)
        write_json(
            self.tree,
            self.item_path(day),
            item.to_dict(include_self_link=True, transform_hrefs=False),
        )
        with self._lock, self.store.lock(self.collection_path):  # other processes too
            current = self.tree.read_collection()
            days = sorted({*linked_days(current), day})
            write_collection(self.tree, days, extent_union(current, grid), license=self.license)
            write_catalog(self.tree)
        log.info("published %s: %s", day, self.location(self.cog_path(day)))
        return PublishedDay(self.cog_path(day), self.item_path(day), self.quicklook_path(day))

    def _write_files(
        self, day: date, dataset: xr.Dataset, grid: Grid, public: Mapping[str, Any]
    ) -> dict[str, tuple[str, int] | None]:
        """Write the day's COGs and quick-look concurrently (GDAL compresses without the GIL
        while matplotlib draws); their digests by COG key.

        Each file is written atomically; when one fails, those that were written are removed
        (no half-published day: the item needs every file) and the first failure is raised.
        """
        from smda.storage.quicklook import render_quicklook  # matplotlib: only when publishing

        bands, tags = cog_bands(dataset), cog_tags(day, public)

        def cog(spec: CogSpec) -> tuple[str, int] | None:
            with self.store.writing(self.cog_path(day, spec)) as out:
                write_cog(out, spec, bands[spec.key], grid, tags)
                return file_digest(out)

        def quicklook() -> None:
            with self.store.writing(self.quicklook_path(day)) as out:
                render_quicklook(dataset, out, day=day)

        jobs: dict[Path, Callable[[], tuple[str, int] | None]] = {
            self.cog_path(day, spec): functools.partial(cog, spec) for spec in COGS
        }
        jobs[self.quicklook_path(day)] = quicklook
        with ThreadPoolExecutor(len(jobs), thread_name_prefix="publish") as pool:
            futures = {path: pool.submit(job) for path, job in jobs.items()}
            wait(futures.values())  # an interrupt here still waits for the writers (shutdown)
        failures = [e for f in futures.values() if (e := f.exception()) is not None]
        if failures:
            for path, future in futures.items():
                if future.exception() is None:
                    self.store.unlink(path)
            raise failures[0]
        return {spec.key: futures[self.cog_path(day, spec)].result() for spec in COGS}

    def unpublish(self, days: Iterable[date]) -> list[date]:
        """Withdraw days: their collection links first, then their items and COGs.

        Returns
        -------
        The days that had been published, ascending.
        """
        drop = set(days)
        removed = sorted(d for d in drop if any(self.store.exists(p) for p in self.files(d)))
        with self._lock, self.store.lock(self.collection_path):  # other processes too
            current = self.tree.read_collection()
            if current is not None:
                remaining = [d for d in linked_days(current) if d not in drop]
                bbox = current["extent"]["spatial"]["bbox"][0]
                write_collection(self.tree, remaining, bbox, license=self.license)
        for d in removed:
            for path in [self.item_path(d), *self.files(d)]:  # the item first
                self.store.unlink(path)
        if removed:
            log.info("unpublished %d days from %s", len(removed), self.url)
        return removed

    def problem(self, day: date) -> str | None:
        """What is wrong with the published ``day``: None when each COG matches its item's
        asset (``file:size`` and ``file:checksum``). An item of the one-COG layout (no
        ``flags`` asset) is out of date: publishing the day again replaces it."""
        raw = self.store.read_bytes(self.item_path(day))
        if raw is None:
            return "STAC item missing"
        try:
            assets: dict[str, Any] = json.loads(raw)["assets"]
        except (OSError, ValueError, KeyError) as exc:
            return f"the STAC item is unreadable ({exc})"
        problems = []
        for spec in COGS:
            cog, asset = self.cog_path(day, spec), assets.get(spec.key)
            if (got := self.store.digest(cog)) is None:
                problems.append(f"{cog.name} missing")
            elif asset is None:
                problems.append(f"the STAC item has no {spec.key!r} asset (an older layout)")
            elif asset.get("file:size") != got[1] or asset.get("file:checksum") != multihash(
                got[0]
            ):
                problems.append(
                    f"the size or SHA-256 of {cog.name} differs from its STAC asset's file:checksum"
                )
        return "; ".join(problems) or None

    def published_days(self) -> list[date]:
        """The days linked from the collection, ascending."""
        return linked_days(self.tree.read_collection())
