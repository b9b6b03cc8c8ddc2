"""smda: seamless daily global surface soil moisture by ML-DA (TC labels + LightGBM + nudging)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("smda")
except PackageNotFoundError:  # pragma: no cover - source tree without installation
    __version__ = "0.0.0"
