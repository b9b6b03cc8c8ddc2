"""The analysis error SD: the blend of two independent errors, σ_f where nothing was nudged."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from hypothesis import given
from hypothesis import strategies as st

from smda.science.cycle import FLAG_ASSIMILATED, FLAG_FORECAST_ONLY, FLAG_LAND
from smda.science.nudging import tc_gain
from smda.science.uncertainty import analysis_uncertainty

LAND, NUDGED = FLAG_LAND, FLAG_LAND | FLAG_ASSIMILATED
SD = st.just(0.0) | st.floats(min_value=1e-6, max_value=0.2)
"""Error SDs (m3 m-3), away from underflow so that sqrt(x²) == x exactly."""
GAIN = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


def flags(values: list[list[int]]) -> xr.DataArray:
    arr = np.asarray(values, dtype=np.uint8)
    return xr.DataArray(
        arr,
        dims=("lat", "lon"),
        coords={
            "lat": 35.875 - 0.25 * np.arange(arr.shape[0]),
            "lon": -99.875 + 0.25 * np.arange(arr.shape[1]),
        },
    )


ONE_NUDGED = flags([[NUDGED]])


def sigma(gain: float, sd_f: float, sd_o: float) -> float:
    return float(analysis_uncertainty(ONE_NUDGED, gain, sd_f, sd_o).values[0, 0])


@given(sd_f=SD, sd_o=SD)
def test_gain_zero_keeps_the_forecast_error(sd_f: float, sd_o: float) -> None:
    assert sigma(0.0, sd_f, sd_o) == np.float32(sd_f)


@given(sd_f=SD, sd_o=SD)
def test_gain_one_takes_the_observation_error(sd_f: float, sd_o: float) -> None:
    assert sigma(1.0, sd_f, sd_o) == np.float32(sd_o)


@given(gain=GAIN, sd_f=SD, sd_o=SD)
def test_blend_never_exceeds_the_larger_error(gain: float, sd_f: float, sd_o: float) -> None:
    assert sigma(gain, sd_f, sd_o) <= np.float32(max(sd_f, sd_o)) * (1 + 1e-6)


@given(sd_f=st.floats(0.001, 0.2), sd_o=st.floats(0.001, 0.2))
def test_tc_gain_gives_the_minimum_variance_below_both(sd_f: float, sd_o: float) -> None:
    gain = float(tc_gain(sd_f**2, sd_o**2))
    expected = np.sqrt(sd_f**2 * sd_o**2 / (sd_f**2 + sd_o**2))
    assert sigma(gain, sd_f, sd_o) == pytest.approx(expected, rel=1e-5)
    assert sigma(gain, sd_f, sd_o) <= min(sd_f, sd_o) * (1 + 1e-6)


def test_cells_by_flag_sea_nan_forecast_only_sigma_f() -> None:
    f = flags([[0, LAND, NUDGED], [LAND | FLAG_FORECAST_ONLY, NUDGED, 0]])
    out = analysis_uncertainty(f, 0.5, 0.04, 0.03)
    blended = np.sqrt(0.25 * 0.04**2 + 0.25 * 0.03**2)
    expected = np.array([[np.nan, 0.04, blended], [0.04, blended, np.nan]], dtype=np.float32)
    np.testing.assert_array_equal(out.values, expected)
    assert out.dtype == np.float32
    assert out.dims == ("lat", "lon")
    np.testing.assert_array_equal(out["lon"].values, f["lon"].values)
    assert out.attrs["units"] == "m3 m-3"


def test_per_cell_fields_as_arrays_and_dataarrays() -> None:
    f = flags([[NUDGED, NUDGED]])
    gain = xr.DataArray([[0.0, 1.0]], dims=("lat", "lon"))
    sd_f = np.array([[0.05, 0.05]])
    out = analysis_uncertainty(f, gain, sd_f, 0.02)
    np.testing.assert_array_equal(out.values, np.array([[0.05, 0.02]], dtype=np.float32))


@pytest.mark.parametrize(
    ("gain", "sd_f", "sd_o", "message"),
    [
        (1.5, 0.05, 0.04, "gain"),
        (0.5, -0.01, 0.04, "≥ 0"),
        (np.zeros((2, 2)), 0.05, 0.04, "gain must be a scalar or a (1, 1)"),
    ],
)
def test_invalid_inputs_are_refused(gain: object, sd_f: float, sd_o: float, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        analysis_uncertainty(ONE_NUDGED, gain, sd_f, sd_o)  # type: ignore[arg-type]
