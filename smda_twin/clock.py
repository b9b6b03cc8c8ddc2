"""The twin's clock: what each provider has published by a configurable "today".

Real providers publish with a latency; the twin's replicas only serve days that the real
service would have published by ``today`` (a UTC date that tests and the demo move forward).

========================  =========================================================
provider                  rule (defaults, see :class:`Latencies`)
========================  =========================================================
ERA5 / ERA5-Land (CDS)    days up to today − 5; a day younger than 60 days is ERA5T
                          (``expver`` "0005", provisional), older days are final ("0001")
SMAP L3 (Earthdata)       days up to today − 2 (about 50 h after the last overpass)
MSWEP NRT                 days up to today − 0 (hours); files younger than 10 days are
                          revised in place
GLDAS (Earthdata)         days up to today − 45
========================  =========================================================
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date, timedelta

__all__ = ["Clock", "Latencies"]


@dataclass(frozen=True)
class Latencies:
    """Publication latencies of the providers, in days."""

    era5: int = 5
    era5land: int = 5
    era5_final_after: int = 60
    smap: int = 2
    mswep: int = 0
    mswep_revised_within: int = 10
    gldas: int = 45

    def for_provider(self, product: str) -> int:
        try:
            return int(getattr(self, product))
        except AttributeError:
            raise ValueError(f"no latency for product {product!r}") from None


class Clock:
    """A settable "today" shared by all replicas of one twin (thread-safe)."""

    def __init__(self, today: date, latencies: Latencies | None = None) -> None:
        self._lock = threading.Lock()
        self._today = today
        self.latencies = latencies or Latencies()

    @property
    def today(self) -> date:
        with self._lock:
            return self._today

    def set(self, today: date) -> None:
        with self._lock:
            self._today = today

    def advance(self, days: int = 1) -> date:
        with self._lock:
            self._today += timedelta(days=days)
            return self._today

    def newest(self, product: str) -> date:
        """Newest day ``product`` has published by today."""
        return self.today - timedelta(days=self.latencies.for_provider(product))

    def available(self, product: str, day: date) -> bool:
        return day <= self.newest(product)

    def era5_expver(self, day: date) -> str:
        """ERA5 experiment version of ``day`` as published today: "0005" (ERA5T) or "0001"."""
        return "0005" if (self.today - day).days < self.latencies.era5_final_after else "0001"
