"""smda's exception tree: every error says what happened and what the user can do.

``SmdaError`` is the root. Three kinds matter to operations and are handled differently:

- :class:`NotYetAvailable` — the provider has not published the data yet. An expected,
  normal outcome: try again later. Never retried in a loop, never reported as a failure.
- :class:`TransientError` — a failure that may go away (429, 5xx, timeouts, resets, a
  truncated or corrupt download). Retried with bounded backoff.
- :class:`PermanentError` — retrying cannot help (credentials rejected, licence not
  accepted, invalid request, malformed file). Fails fast with instructions.
"""

from __future__ import annotations

from datetime import date

__all__ = [
    "ConfigError",
    "CredentialsError",
    "InvalidRequest",
    "LicenceNotAccepted",
    "MalformedFile",
    "MissingInputs",
    "MissingVariable",
    "NoModel",
    "NotYetAvailable",
    "OutsideArchive",
    "PermanentError",
    "ProviderFault",
    "SmdaError",
    "TransientError",
]


class SmdaError(Exception):
    """Root of all errors raised by smda."""


class ConfigError(SmdaError):
    """The configuration is invalid (bad value, missing file); the message names the setting."""


class MissingInputs(SmdaError):
    """Inputs a computation needs are not staged in the store; the message lists them and
    the ``smda fetch`` commands that stage them.

    Attributes
    ----------
    missing:
        The missing ``(source, day)`` pairs (``day`` is None for a static field).
    """

    def __init__(self, message: str, missing: list[tuple[str, date | None]]) -> None:
        super().__init__(message)
        self.missing = missing


class NoModel(SmdaError):
    """No model bundle is registered (or the requested version is not); train one first."""


class NotYetAvailable(SmdaError):
    """The provider has not published the requested data yet; try again later.

    Do not raise this for data that will never exist (use :class:`InvalidRequest`).
    """


class TransientError(SmdaError):
    """A failure that may succeed on retry (rate limit, server error, timeout, bad transfer)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(SmdaError):
    """A failure that retrying cannot fix; the message says what the user must do."""


class CredentialsError(PermanentError):
    """Credentials are missing or were rejected by the provider."""


class LicenceNotAccepted(PermanentError):
    """The account has not accepted the dataset's licence (CDS) or EULA (Earthdata)."""


class InvalidRequest(PermanentError):
    """The provider rejected the request as invalid (unknown variable, bad date, bad area)."""


class OutsideArchive(InvalidRequest, ValueError):
    """Days before the first day a source's archive holds: they will never exist.

    Raised before any request is made (the provider is not asked); also a ``ValueError``, like
    any bad argument. Not for days after the newest one (those are :class:`NotYetAvailable`).

    Attributes
    ----------
    source:
        The source's name (``smap``, ``era5`` …).
    first_day:
        The first day of its archive.
    start, end:
        The requested range.
    """

    def __init__(self, source: str, first_day: date, start: date, end: date) -> None:
        super().__init__(
            f"{source}: the archive starts on {first_day}, but {start} … {end} was requested; "
            f"ask for days from {first_day} on"
        )
        self.source = source
        self.first_day = first_day
        self.start = start
        self.end = end


class ProviderFault(PermanentError):
    """The provider delivers broken data for a request again and again (a CDS result still
    corrupt after every download of a job and of the job submitted again): retrying now cannot
    help. The message names the request, what was tried, and what to report.

    Not for a transfer that went wrong once or twice (a :class:`TransientError`, retried).
    """


class MalformedFile(PermanentError):
    """A file does not have the structure its producer documents."""


class MissingVariable(MalformedFile, ValueError):
    """A delivered file lacks a variable smda needs (the provider left it out of its answer).

    Also a ``ValueError``, for callers of the staging functions that catch that. Not
    retried: downloading the same answer again does not bring the variable back.

    Attributes
    ----------
    variables:
        The missing variables' short names (``ssrd``, ``t2m`` …).
    """

    def __init__(self, message: str, variables: list[str]) -> None:
        super().__init__(message)
        self.variables = variables
