"""``python -m benchmarks train --set=NAME=VALUE``: the hyper-parameter changes it trains with."""

from __future__ import annotations

import pytest

from benchmarks.train import _changes, main


def test_set_gives_typed_hyper_parameter_changes() -> None:
    changes = _changes(["learning_rate=0.1", "max_rounds=300"])
    assert changes == {"learning_rate": 0.1, "max_rounds": 300}
    assert isinstance(changes["max_rounds"], int)


@pytest.mark.parametrize("pair", ["learning_rat=0.1", "learning_rate=", "learning_rate"])
def test_set_refuses_an_unknown_or_empty_field(pair: str) -> None:
    with pytest.raises(SystemExit, match="NAME one of"):
        _changes([pair])


def test_an_unknown_option_is_refused_before_any_staging() -> None:
    with pytest.raises(SystemExit, match="unknown option"):
        main(["--fast"])
