"""Provider credentials from files: the ``*_FILE`` convention of Docker secrets.

The providers' clients read their credentials from the environment (``CDSAPI_KEY``,
``EARTHDATA_TOKEN``, ``EARTHDATA_USERNAME``/``EARTHDATA_PASSWORD``) or from their own files
(``~/.cdsapirc``, ``~/.netrc``). A container gets secrets as files instead
(``/run/secrets/<name>``), so smda also accepts ``<NAME>_FILE``: the path of a file holding the
value (surrounding whitespace removed). An empty file counts as unset, so a stack can mount an
empty secret for a provider it does not use. Setting both ``NAME`` and ``NAME_FILE`` is an error.

Values read here are never logged: errors name the variable and the path, not the content.
:func:`smda.ingest.clients.file_credentials_env` exports them where the clients look for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from smda.errors import CredentialsError

__all__ = ["CREDENTIAL_VARIABLES", "file_credentials"]

#: The credential variables that may also be given as ``<NAME>_FILE``.
CREDENTIAL_VARIABLES = (
    "CDSAPI_URL",
    "CDSAPI_KEY",
    "EARTHDATA_TOKEN",
    "EARTHDATA_USERNAME",
    "EARTHDATA_PASSWORD",
)


def file_credentials(environ: Mapping[str, str]) -> dict[str, str]:
    """The credentials given as files in ``environ``: ``{NAME: value}`` for each
    ``NAME_FILE`` of :data:`CREDENTIAL_VARIABLES` whose file is not empty.

    Raises
    ------
    CredentialsError
        If ``NAME`` and ``NAME_FILE`` are both set, or the file cannot be read (one line naming
        the variable and the path, never the value).
    """
    found: dict[str, str] = {}
    for name in CREDENTIAL_VARIABLES:
        path = environ.get(f"{name}_FILE")
        if not path:
            continue
        if environ.get(name):
            raise CredentialsError(f"both {name} and {name}_FILE are set: keep one of them")
        try:
            value = Path(path).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not text"
            raise CredentialsError(f"{name}_FILE={path}: cannot read it ({reason})") from None
        if value:
            found[name] = value
    return found
