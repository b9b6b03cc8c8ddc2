"""Fault injection for the twin's replicas: make a provider misbehave on purpose.

A :class:`FaultPlan` holds rules; each request a replica receives is offered to the plan,
which hands back the first matching rule (and counts it down). The replicas implement the
kinds:

=============  ==============================================================================
kind           effect
=============  ==============================================================================
``status``     answer with ``status`` (429 with ``Retry-After``, 500, 502, 503, ...) and a
               provider-style JSON error body
``slow``       wait ``delay`` seconds before answering (client read timeouts fire)
``reset``      close the TCP connection abruptly (RST) without an answer
``truncate``   announce the full ``Content-Length`` but send only half the body, then close
``corrupt``    send a body of the right length whose bytes are scrambled
``queue``      CDS: the job stays ``accepted`` for ``polls`` status requests
``job_failed`` CDS: the job ends ``failed`` with a traceback
``licence``    CDS: 403 "required licences not accepted"
``eula``       Earthdata: 403 asking to accept the EULA
=============  ==============================================================================

Rules match on HTTP method and a regular expression searched in the request path, and fire
``times`` times (``-1``: forever).
"""

from __future__ import annotations

import re
import threading
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = ["FAULT_KINDS", "Fault", "FaultPlan"]

FaultKind = Literal[
    "status", "slow", "reset", "truncate", "corrupt", "queue", "job_failed", "licence", "eula"
]
FAULT_KINDS: tuple[str, ...] = (
    "status",
    "slow",
    "reset",
    "truncate",
    "corrupt",
    "queue",
    "job_failed",
    "licence",
    "eula",
)


@dataclass
class Fault:
    """One misbehaviour rule (see the module docstring for the kinds)."""

    kind: FaultKind
    path: str = ""
    method: str | None = None
    times: int = 1
    status: int = 503
    retry_after: float | None = None
    delay: float = 0.0
    polls: int = 3
    fired: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(
                f"unknown fault kind {self.kind!r}; choose one of {', '.join(FAULT_KINDS)}"
            )
        re.compile(self.path)

    def matches(self, method: str, path: str, kinds: tuple[str, ...]) -> bool:
        return (
            self.kind in kinds
            and (self.method is None or self.method.upper() == method.upper())
            and re.search(self.path, path) is not None
            and (self.times < 0 or self.fired < self.times)
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fault:
        allowed = {f for f in cls.__dataclass_fields__ if f != "fired"}
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(
                f"unknown fault field(s) {sorted(unknown)}; allowed: {sorted(allowed)}"
            )
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class FaultPlan:
    """Thread-safe list of fault rules for one provider."""

    def __init__(self, faults: list[Fault] | None = None) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = list(faults or [])

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, method: str, path: str, kinds: tuple[str, ...] = FAULT_KINDS) -> Fault | None:
        """Return (and count) the first rule of one of ``kinds`` matching this request."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path, kinds):
                    fault.fired += 1
                    return fault
        return None

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.to_dict() for f in self._faults]
