"""The registry of sources by name: ``get_source("era5")``."""

from __future__ import annotations

from smda.ingest.sources.base import FetchTask, IngestContext, Source

__all__ = ["SOURCE_NAMES", "FetchTask", "IngestContext", "Source", "get_source"]

#: name → "module:Class", imported on first use
_REGISTRY = {
    "era5": "smda.ingest.sources.era5:Era5Source",
    "mswep": "smda.ingest.sources.mswep:MswepSource",
    "smap": "smda.ingest.sources.smap:SmapSource",
    "era5land": "smda.ingest.sources.era5:Era5LandSource",
    "gldas": "smda.ingest.sources.gldas:GldasSource",
    "ismn": "smda.ingest.sources.ismn:IsmnSource",
}
SOURCE_NAMES: tuple[str, ...] = tuple(_REGISTRY)
#: the inputs of the daily run (ERA5 and MSWEP required; SMAP optional)
OPERATIONAL = ("era5", "mswep", "smap")


def get_source(name: str) -> Source:
    """The source called ``name``; an unknown name lists the valid ones."""
    try:
        target = _REGISTRY[name]
    except KeyError:
        raise KeyError(
            f"unknown source {name!r}; choose one of {', '.join(SOURCE_NAMES)}"
        ) from None
    module_name, cls_name = target.split(":")
    module = __import__(module_name, fromlist=[cls_name])
    source: Source = getattr(module, cls_name)()
    return source
