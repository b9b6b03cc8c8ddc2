"""Reproducible sampling of the training cells to a row budget.

A global year at 0.25° is ~360 k land cells × 365 days ≈ 130 M teacher-forced rows; the model
does not need them all to reach its skill. :func:`sample_cells` keeps a seeded, reproducible
subset of *whole cells* (every day of a kept cell), so that the rows stay under a budget.

Why cells and not cell-days: the free-running CV, the DAgger refits, the CDF tables and the
gain all run the model forward through each cell's days, which needs every day of a cell.
Sampling whole cells keeps that intact; it thins the spatial coverage uniformly instead.

How a cell is chosen: its global 0.25° cell id (:func:`smda.science.features.global_cell_ids`)
and the seed are hashed (SplitMix64 finaliser) to a number u in [0, 1); the cell is kept when
u < ``fraction``. The choice of a cell depends only on its id, the seed and the fraction — not
on the region it is part of nor on the order of the cells — so the same seed and budget give
the same rows on every machine, and a larger budget keeps a superset of the cells.

Science core: numpy only.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["cell_fraction", "cell_hash", "sample_cells"]

_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)


def cell_hash(cell_ids: npt.ArrayLike, seed: int) -> npt.NDArray[np.float64]:
    """A uniform number in [0, 1) per cell, from its global cell id and ``seed`` (SplitMix64)."""
    ids = np.asarray(cell_ids, dtype=np.int64).astype(np.uint64)
    with np.errstate(over="ignore"):
        z = (ids + np.uint64(seed % 2**64) * np.uint64(0x9E3779B97F4A7C15)) & _MASK
        z = (z + np.uint64(0x9E3779B97F4A7C15)) & _MASK
        z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK
        z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK
        z = z ^ (z >> np.uint64(31))
    return np.asarray((z >> np.uint64(11)).astype(np.float64) / float(2**53))


def cell_fraction(n_cells: int, n_days: int, row_budget: int | None) -> float:
    """The fraction of cells whose ``n_days`` rows fit in ``row_budget`` (1.0: all, or no
    budget)."""
    if row_budget is None:
        return 1.0
    if row_budget < 1:
        raise ValueError(f"row budget must be ≥ 1 row, got {row_budget}")
    rows = n_cells * n_days
    return 1.0 if rows <= row_budget else row_budget / rows


def sample_cells(
    cell_ids: npt.ArrayLike, fraction: float, seed: int, *, min_cells: int = 1
) -> npt.NDArray[np.bool_]:
    """Which cells to keep (module docstring): a bool mask of ``cell_ids``' shape.

    At least ``min_cells`` cells are kept (those of the smallest hashes) when the fraction
    would keep fewer.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"sampling fraction must be in (0, 1], got {fraction}")
    u = cell_hash(cell_ids, seed)
    if fraction >= 1.0:
        return np.ones(u.shape, dtype=bool)
    keep = u < fraction
    if int(keep.sum()) < min(min_cells, u.size):
        keep = np.zeros(u.shape, dtype=bool)
        keep[np.argsort(u, kind="stable")[:min_cells]] = True
    return keep
