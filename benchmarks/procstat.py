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


def reset_peak() -> bool:
    """Start a new peak-RSS measurement (``/proc/self/clear_refs``, Linux ≥ 4.0); False when
    the kernel does not allow it (the peak then runs on from the process's start)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def take_peak_mb() -> float:
    """This process's peak RSS (MB) since the last call, and a new measurement started."""
    peak = peak_mb()
    reset_peak()
    return peak
