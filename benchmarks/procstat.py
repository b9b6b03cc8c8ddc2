"""This process's memory from ``/proc/self/status`` (Linux), in MB."""

from __future__ import annotations

from pathlib import Path


def status_mb(field: str) -> float:
    """``field`` of ``/proc/self/status`` (``VmHWM``: peak RSS, which unlike ``ru_maxrss`` does
    not carry the peak of the process that started it across ``exec``; ``VmRSS``: RSS now)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status (Linux only)")


def peak_mb() -> float:
    """This process's peak RSS (MB)."""
    return status_mb("VmHWM")
