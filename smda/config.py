"""smda's settings: typed, loaded once at the edge (CLI or flow) and passed down.

Every setting can come from the environment with the ``SMDA_`` prefix (or a ``.env`` file in
the working directory). The library never reads the environment itself: functions take the
:class:`Settings` object, or the values they need.

==========================  ==================================================================
variable                    meaning
==========================  ==================================================================
``SMDA_DATA_DIR``           where everything smda stores lives (cache, staged inputs, models,
                            state chain, products). Default ``./data``.
``SMDA_ENDPOINTS``          path of the endpoints JSON written by ``smda twin serve``. When set,
                            every provider client is pointed at those (twin) endpoints.
``SMDA_REGION``             default region ``west,south,east,north`` or a region key such as
                            ``r0.25_200_300_40x40`` (default: the globe).
``SMDA_MSWEP_URL``          MSWEP daily file URL template (fsspec URL with ``{yyyy}{ddd}``),
                            e.g. the path of an rclone-synced mirror.
``SMDA_LOG_LEVEL``          logging level (INFO).
``SMDA_GAIN``               a fixed nudging gain G in [0, 1], overriding the gain each model
                            carries (estimated from its training data: :mod:`smda.science.gain`).
``SMDA_SPINUP_DAYS``        days of spin-up before the first day of a cold start (default 30).
``SMDA_STATE_URL``          fsspec URL of the state chain (default ``<data_dir>/state``).
``SMDA_PRODUCTS_URL``       where COGs and the STAC catalog are published: a folder or an
                            ``s3://bucket/prefix`` URL (default ``<data_dir>/products``).
``SMDA_PRODUCTS_PUBLIC_URL`` HTTP(S) URL at which the products folder (``SMDA_PRODUCTS_URL``) is
                            served, e.g. ``https://data.example.org/smda``: STAC hrefs and the
                            runs' catalog links become URLs under it (default: none; relative
                            links and local paths).
``SMDA_PUSHGATEWAY``        Prometheus Pushgateway URL for run metrics (default: none; metrics are
                            then written to ``<data_dir>/metrics/<job>-<region>.prom``).
``SMDA_DASK_SCHEDULER``     address of a Dask scheduler (``tcp://host:8786``) that ``smda train``,
                            ``smda backfill`` and the ``backfill`` flow run on (default: none;
                            they run in this process). ``--dask-scheduler`` overrides it.
==========================  ==================================================================

Provider credentials are not smda settings: they are read by the providers' own clients from
their usual places (``CDSAPI_URL``/``CDSAPI_KEY`` or ``~/.cdsapirc``; ``EARTHDATA_TOKEN`` or
``EARTHDATA_USERNAME``/``EARTHDATA_PASSWORD`` or ``~/.netrc``) or from Prefect blocks.
Object storage (``s3://`` state and products) takes its endpoint and credentials from the
standard AWS environment (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``,
``AWS_REGION``...), read by s3fs and botocore.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from smda.errors import ConfigError
from smda.geo.grid import BBox
from smda.geo.keys import bbox_of_region

__all__ = ["DASK_SCHEDULER_ENV", "Settings", "load_settings"]

DASK_SCHEDULER_ENV = "SMDA_DASK_SCHEDULER"
"""Environment variable of :attr:`Settings.dask_scheduler` (also read by the CLI's
``--dask-scheduler`` options; :mod:`smda.ops.cluster`)."""


class Settings(BaseSettings):
    """smda configuration (see the module docstring for the environment variables)."""

    model_config = SettingsConfigDict(
        env_prefix="SMDA_", env_file=".env", extra="ignore", frozen=True
    )

    data_dir: Path = Field(default=Path("data"), description="Root of everything smda stores.")
    endpoints: Path | None = Field(
        default=None, description="Endpoints JSON written by `smda twin serve` (twin mode)."
    )
    region: str | None = Field(
        default=None, description="Default region 'west,south,east,north' or a region key."
    )
    mswep_url: str | None = Field(
        default=None, description="MSWEP daily file URL template with {yyyy} and {ddd}."
    )
    log_level: str = Field(default="INFO", description="Logging level.")
    gain: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Fixed nudging gain G (default: the model's gain, estimated at training).",
    )
    spinup_days: int = Field(default=30, ge=1, le=366, description="Cold-start spin-up days.")
    state_url: str | None = Field(default=None, description="fsspec URL of the state chain.")
    products_url: str | None = Field(default=None, description="Where products are published.")
    products_public_url: str | None = Field(
        default=None,
        description="HTTP(S) URL at which the products folder is served (STAC hrefs, links).",
    )
    pushgateway: str | None = Field(default=None, description="Prometheus Pushgateway URL.")
    dask_scheduler: str | None = Field(
        default=None,
        description="Address of the Dask scheduler training and backfill run on (tcp://host:8786).",
    )
    lock_timeout: float = Field(
        default=300.0,
        ge=0.0,
        description="Seconds a run waits for another writer of its region before it gives up "
        "with exit code 73 (0: do not wait).",
    )

    @field_validator("region")
    @classmethod
    def _check_region(cls, value: str | None) -> str | None:
        if value is not None:
            bbox_of_region(value)
        return value

    @field_validator("products_public_url")
    @classmethod
    def _check_public_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("http://", "https://")) or "@" in value.split("/")[2]:
            raise ValueError(
                "not an http(s):// URL without credentials (the public address at which "
                "SMDA_PRODUCTS_URL is served)"
            )
        return value.rstrip("/")

    @field_validator("log_level")
    @classmethod
    def _check_level(cls, value: str) -> str:
        levels = ("DEBUG", "INFO", "WARNING", "ERROR")
        if value.upper() not in levels:
            raise ValueError(f"log level {value!r} is not one of {', '.join(levels)}")
        return value.upper()

    @property
    def bbox(self) -> BBox | None:
        return bbox_of_region(self.region) if self.region else None


def load_settings(**overrides: object) -> Settings:
    """Load settings from the environment (and ``overrides``).

    Raises
    ------
    ConfigError
        One line naming each invalid variable and what is wrong with it (never its value,
        which may hold a credential).
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"SMDA_{'_'.join(str(part) for part in error['loc']).upper()}: "
            + error["msg"].removeprefix("Value error, ")
            for error in exc.errors()
        )
        raise ConfigError(f"invalid smda configuration: {problems}") from exc
