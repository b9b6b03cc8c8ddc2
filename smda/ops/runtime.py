"""The run context and the run-time objects of one invocation, for one region.

Settings are read once, at the edge (a CLI command, a flow's entry), into a frozen
:class:`RunContext` — the settings, the region and the providers' "today" — that is passed
down (flows hand it to their tasks: it pickles, so tasks can run in threads, processes or on
Dask workers). :func:`open_runtime` turns it into the objects a run works with
(:class:`Runtime`): the ingest context (store, endpoints, retry policy), the state chain, the
model registry and the publisher. Where each lives follows from the settings
(:meth:`RunContext.locations`): the state chain at ``SMDA_STATE_URL/<region>`` (default
``<data_dir>/state``), models at ``<data_dir>/models/<region>``, products at
``SMDA_PRODUCTS_URL/<region>`` (default ``<data_dir>/products``). Nothing below this layer
reads the environment.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

from smda.config import Settings
from smda.geo.grid import BBox, Grid, region_grid
from smda.ingest.context import make_context
from smda.ingest.endpoints import redact_url
from smda.ingest.retry import RetryPolicy
from smda.ingest.sources.base import IngestContext
from smda.storage.chain import StateChain
from smda.storage.locks import Holder, WriterLock
from smda.storage.orphans import sweep_orphans
from smda.storage.publish import Publisher
from smda.storage.regions import ensure_region_file
from smda.storage.registry import ModelRegistry, models_dir
from smda.storage.store import Store, region_key

__all__ = ["RunContext", "Runtime", "data_paths", "open_runtime"]


@dataclass(frozen=True)
class RunContext:
    """What one invocation runs on: settings, region and the providers' today (frozen).

    Build it once at the edge with :meth:`create`; :func:`open_runtime` opens it.
    """

    settings: Settings
    region: BBox | None = None
    """The region (None: the globe)."""
    today: date | None = None
    """The providers' today (None: the twin's clock when talking to the twin, else UTC)."""

    @classmethod
    def create(
        cls, settings: Settings, *, region: str | BBox | None = None, today: date | None = None
    ) -> RunContext:
        """The context of ``region`` (a ``west,south,east,north`` string, a box, or None for
        ``SMDA_REGION``'s, itself None for the globe)."""
        bbox = BBox.parse(region) if isinstance(region, str) else region
        return cls(settings, bbox if bbox is not None else settings.bbox, today)

    def on(self, region: str | BBox | None) -> RunContext:
        """The same settings for another region (None: keep this one)."""
        if region is None:
            return self
        return replace(self, region=BBox.parse(region) if isinstance(region, str) else region)

    @property
    def grid(self) -> Grid:
        """The analysis grid of the region."""
        return region_grid(self.region)

    @property
    def region_key(self) -> str:
        """The region's folder name under every location (:func:`smda.storage.store.region_key`)."""
        return region_key(self.grid)

    def locations(self) -> dict[str, str]:
        """Where the region's state, models and products live (URLs or paths)."""
        s = self.settings
        state = s.state_url or str(s.data_dir / "state")
        products = s.products_url or str(s.data_dir / "products")
        return {
            "state": f"{state.rstrip('/')}/{self.region_key}",
            "models": str(models_dir(s.data_dir, self.region_key)),
            "products": f"{products.rstrip('/')}/{self.region_key}",
        }

    def products_public_url(self) -> str | None:
        """The public URL of the region's products folder (``SMDA_PRODUCTS_PUBLIC_URL``), or
        None when the products are not served."""
        base = self.settings.products_public_url
        return f"{base}/{self.region_key}" if base else None


@dataclass(frozen=True)
class Runtime:
    """Everything one invocation works with, for one region (built by :func:`open_runtime`)."""

    settings: Settings
    ctx: IngestContext
    chain: StateChain
    registry: ModelRegistry
    publisher: Publisher

    @property
    def store(self) -> Store:
        return self.ctx.store

    @property
    def grid(self) -> Grid:
        return self.ctx.store.grid

    @property
    def region(self) -> str:
        return self.ctx.store.region

    @property
    def gain(self) -> float | None:
        """The fixed gain of ``SMDA_GAIN``, or None: the model's own (:mod:`smda.science.gain`)."""
        return self.settings.gain

    def store_writer(self, *, sweep: bool = True) -> AbstractContextManager[Holder]:
        """Hold the writer lock of the region's store (:meth:`smda.storage.store.Store.writer`)."""
        return self.store.writer(sweep=sweep)

    @contextmanager
    def chain_writer(self, *, sweep: bool = True) -> Iterator[Holder]:
        """Hold the writer lock of the region's state chain, models and products for the
        block, waiting up to ``SMDA_LOCK_TIMEOUT`` s for another process; the first hold in this
        process removes temporary files left there by interrupted runs. Each of the three
        folders gets its ``region.json`` when it has none (:mod:`smda.storage.regions`).

        Raises
        ------
        smda.storage.locks.RegionBusy
            If another process still writes them after the timeout.
        """
        lock = WriterLock(
            self.store.locks_dir / "chain.lock",
            f"the state chain of region {self.region}",
            timeout=self.settings.lock_timeout,
        )
        first = sweep and not lock.held()
        with lock() as holder:
            if first:
                sweep_orphans(self.chain_dirs)
            for folder in (self.chain.url, self.registry.root, self.publisher.url):
                ensure_region_file(folder, self.grid)
            yield holder

    @property
    def chain_dirs(self) -> list[Path]:
        """The local folders only the chain writer writes (models, local products and chain)."""
        roots = [self.registry.root]
        if self.publisher.is_local:
            roots.append(self.publisher.root)
        if self.chain.is_local:
            roots.append(Path(self.chain.root))
        return roots


def open_runtime(
    context: RunContext | Settings,
    *,
    region: str | BBox | None = None,
    today: date | None = None,
    policy: RetryPolicy | None = None,
) -> Runtime:
    """The run-time objects of ``context`` (a :class:`RunContext`; given settings, the context
    of ``region`` and ``today`` is made from them — at the edge, never from the environment)."""
    run = (
        context
        if isinstance(context, RunContext)
        else RunContext.create(context, region=region, today=today)
    )
    if isinstance(context, RunContext):
        run = run.on(region)
        run = replace(run, today=today) if today is not None else run
    ctx = make_context(run.settings, region=run.region, today=run.today, policy=policy)
    where = run.locations()
    return Runtime(
        settings=run.settings,
        ctx=ctx,
        chain=StateChain(where["state"]),
        registry=ModelRegistry(Path(where["models"])),
        publisher=Publisher(where["products"], base_url=run.products_public_url()),
    )


def data_paths(rt: Runtime) -> dict[str, str]:
    """Where this region's state, models and products live (for messages and artifacts; a
    location's credentials redacted)."""
    return {
        "state": redact_url(rt.chain.url),
        "models": str(rt.registry.root),
        "products": redact_url(rt.publisher.url),
        "catalog": rt.publisher.catalog_href,
        "staged": str(Path(rt.store.root) / "staged" / region_key(rt.grid)),
    }
