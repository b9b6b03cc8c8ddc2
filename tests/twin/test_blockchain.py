"""The twin's memoised sequential process (:class:`smda_twin.noise.BlockChain`)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from smda_twin.noise import BlockChain


def _running_sum(calls: list[int]) -> BlockChain[float]:
    """Day d's value is the sum of 0 … d, in blocks of 3 days from day 0; ``calls`` records
    the first day of each block integrated."""

    def step(first: int, n: int, state: float) -> tuple[npt.NDArray[np.float64], float]:
        calls.append(first)
        values = state + np.cumsum(np.arange(first, first + n, dtype=np.float64))
        return values, float(values[-1])

    return BlockChain(0, 3, lambda: 0.0, step)


def test_values_follow_the_chain_whatever_the_order_of_requests() -> None:
    calls: list[int] = []
    chain = _running_sum(calls)
    np.testing.assert_array_equal(chain.get(7, 8), [28.0, 36.0])
    np.testing.assert_array_equal(chain.get(0, 2), [0.0, 1.0, 3.0])
    assert calls == [0, 3, 6]  # each block once


def test_a_walk_forward_that_forgets_behind_it_holds_two_states_and_one_block() -> None:
    calls: list[int] = []
    walked, kept = _running_sum(calls), _running_sum([])
    for day in range(30):
        walked.forget_before(day)
        np.testing.assert_array_equal(walked.get(day, day), kept.get(day, day))
    assert calls == list(range(0, 30, 3))  # walking forward never integrates a block twice
    assert sorted(walked._values) == [9] and sorted(walked._states) == [8, 9]
    assert len(kept._values) == 10  # without forgetting, every block stays
    calls.clear()
    np.testing.assert_array_equal(walked.get(4, 4), [10.0])  # a forgotten day: integrated anew
    assert calls == [0, 3]
