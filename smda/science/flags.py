"""The analysis flags: the one table of the bits of the ``flags`` field (uint8, per cell).

Every description of the flags derives from :data:`FLAGS`: the cycle sets the bits
(:mod:`smda.science.cycle`), the state files carry them as CF ``flag_masks``/``flag_meanings``,
the COG as band tags, the STAC items as ``classification:bitfields`` and README's flag table
(a test compares it with this one).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "FLAGS",
    "FLAG_ASSIMILATED",
    "FLAG_FORECAST_ONLY",
    "FLAG_LAND",
    "FLAG_OBS_UNMATCHED",
    "FLAG_STATE_FILLED",
    "Flag",
    "flags_summary",
]


@dataclass(frozen=True)
class Flag:
    """One bit of the flags field.

    Attributes
    ----------
    bit:
        Position of the bit (0 = least significant).
    name:
        Identifier (CF ``flag_meanings`` word, STAC class name).
    description:
        What a set bit means.
    """

    bit: int
    name: str
    description: str

    @property
    def mask(self) -> int:
        """The flag's value in the field (``1 << bit``)."""
        return 1 << self.bit


FLAGS = (
    Flag(0, "land", "land cell: the model ran here"),
    Flag(1, "assimilated", "a SMAP retrieval was CDF-matched and nudged in"),
    Flag(2, "obs_unmatched", "a SMAP retrieval existed but its pixel has no CDF table"),
    Flag(3, "forecast_only", "no SMAP input for the day: the analysis is the forecast"),
    Flag(4, "state_filled", "the previous state was missing here: the model climatology was used"),
)
"""The flags, lowest bit first."""


def _mask(name: str) -> int:
    return next(f.mask for f in FLAGS if f.name == name)


FLAG_LAND = _mask("land")
"""Land cell: the model ran here."""
FLAG_ASSIMILATED = _mask("assimilated")
"""A SMAP retrieval was CDF-matched and nudged in."""
FLAG_OBS_UNMATCHED = _mask("obs_unmatched")
"""A retrieval existed but its pixel has no CDF table: not assimilated."""
FLAG_FORECAST_ONLY = _mask("forecast_only")
"""No SMAP input for the day: the analysis is the forecast."""
FLAG_STATE_FILLED = _mask("state_filled")
"""The state of D−1 was missing here: the model climatology was used."""


def flags_summary() -> str:
    """One line listing the flags: ``1 land, 2 assimilated, …``."""
    return ", ".join(f"{f.mask} {f.name}" for f in FLAGS)
