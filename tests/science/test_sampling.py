"""The seeded cell sampling of the scaled-out training (smda.science.sampling)."""

from __future__ import annotations

import numpy as np
import pytest

from smda.science.sampling import cell_fraction, cell_hash, sample_cells

IDS = np.arange(200_000, dtype=np.int64) * 7 + 11


def test_same_seed_same_cells_other_seed_other_cells() -> None:
    a = sample_cells(IDS, 0.1, seed=5)
    assert np.array_equal(a, sample_cells(IDS.copy(), 0.1, seed=5))
    b = sample_cells(IDS, 0.1, seed=6)
    assert not np.array_equal(a, b)
    assert abs(a.mean() - 0.1) < 0.005 and abs(b.mean() - 0.1) < 0.005
    assert abs((a & b).mean() - 0.01) < 0.002  # the seeds are independent


def test_choice_depends_on_the_cell_not_its_position_or_region() -> None:
    order = np.random.default_rng(0).permutation(IDS.size)
    shuffled = sample_cells(IDS[order], 0.2, seed=1)
    assert np.array_equal(shuffled, sample_cells(IDS, 0.2, seed=1)[order])
    part = sample_cells(IDS[:1000], 0.2, seed=1)  # a sub-region chooses the same cells
    assert np.array_equal(part, sample_cells(IDS, 0.2, seed=1)[:1000])


def test_a_larger_fraction_keeps_a_superset() -> None:
    small, large = sample_cells(IDS, 0.05, seed=2), sample_cells(IDS, 0.3, seed=2)
    assert not (small & ~large).any() and large.sum() > small.sum()


def test_hash_is_uniform() -> None:
    u = cell_hash(IDS, seed=0)
    assert u.min() >= 0.0 and u.max() < 1.0
    counts = np.histogram(u, bins=10, range=(0, 1))[0]
    assert np.all(np.abs(counts - IDS.size / 10) < 0.03 * IDS.size / 10)


def test_fraction_and_minimum() -> None:
    assert cell_fraction(1000, 365, None) == 1.0
    assert cell_fraction(1000, 365, 365_000) == 1.0
    assert cell_fraction(1000, 365, 36_500) == pytest.approx(0.1)
    assert sample_cells(IDS, 1.0, seed=0).all()
    assert sample_cells(IDS[:10], 1e-9, seed=0, min_cells=3).sum() == 3
    with pytest.raises(ValueError, match="row budget"):
        cell_fraction(10, 10, 0)
    with pytest.raises(ValueError, match="fraction"):
        sample_cells(IDS, 0.0, seed=0)
