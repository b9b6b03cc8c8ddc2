"""What a flow run leaves in the Prefect UI: a summary, a table of validation figures, a link.

Every run of a flow publishes, under keys that group the runs of one flow and region
(``smda-<flow>-<region>-…``, so the UI's artifact page shows their history):

- ``…-summary`` (markdown): what was planned, fetched (per source and outcome) and produced
  (per day: analysis / forecast-only / skipped, O−F, the COG), how the run ended and, unless it
  completed, why and what to do (a run that raises or crashes gets one from
  :mod:`flows.outcomes`);
- ``…-validation`` (table): the validation figures of the days analysed (O−F per day, the
  fraction assimilated; in-situ skill where ISMN stations are staged), or one row saying that no
  day was analysed;
- ``…-products`` (link): the STAC catalog of the published products;
- ``…-quicklook`` (markdown, :func:`publish_quicklook_artifact`): the quick-look map of the
  newest day analysed, shown as an image when the products are served over HTTP(S) (the
  publisher's ``base_url``, from ``SMDA_PRODUCTS_PUBLIC_URL``) — a browser cannot open a local
  file from the UI, so otherwise the artifact gives the file's path and says how to serve it.

The text itself comes from the library (:func:`smda.ops.summary_markdown`,
:meth:`smda.ops.ValidationReport.rows`); this module only files it with Prefect.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)

from smda.ingest.fetch import IngestReport
from smda.ops import (
    DailyPlan,
    DayRun,
    RunContext,
    ValidationReport,
    data_paths,
    open_runtime,
    summary_markdown,
)
from smda.ops.outcome import RunOutcome
from smda.storage.quicklook import region_label

__all__ = [
    "artifact_key",
    "catalog_url",
    "publish_quicklook_artifact",
    "publish_run_artifacts",
    "quicklook_markdown",
    "served_url",
]


def artifact_key(flow: str, region: str, what: str) -> str:
    """A Prefect artifact key (lowercase letters, digits and dashes) for ``flow``/``region``."""
    raw = f"smda-{flow}-{region}-{what}".lower()
    return re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9-]", "-", raw)).strip("-")


def catalog_url(location: str) -> str:
    """A URL for a catalog location: URLs (the public ``https://`` one with
    ``SMDA_PRODUCTS_PUBLIC_URL``, fsspec ones) as they are, local paths as ``file://``."""
    if "://" in location:
        return location
    return Path(location).resolve().as_uri()


def _notes(runs: Sequence[DayRun], plan: DailyPlan | None, outcome: RunOutcome) -> list[str]:
    notes = [f"**Outcome**: {outcome.status}"]
    if outcome.reason:
        notes.append(f"> **{outcome.reason}**")
    if outcome.status != "completed":
        notes.append(f"**What to do**: {outcome.advice}")
    if plan is not None and plan.reprocess_from is not None:
        notes.append(
            f"> The inputs of {plan.reprocess_from} and later changed since they were analysed "
            "(e.g. ERA5T replaced by final ERA5): re-run them with the backfill deployment "
            f"(`start={plan.reprocess_from}`, `force=true`)."
        )
    invalidated = sorted({d for r in runs for d in r.invalidated})
    if invalidated:
        notes.append(
            f"> Re-running changed the chain: {len(invalidated)} later day(s) were invalidated "
            f"({invalidated[0]} … {invalidated[-1]})."
        )
    return notes


def publish_run_artifacts(
    flow: str,
    run: RunContext,
    *,
    runs: Sequence[DayRun] = (),
    plan: DailyPlan | None = None,
    report: IngestReport | None = None,
    validation: ValidationReport | None = None,
    outcome: RunOutcome | None = None,
) -> dict[str, str]:
    """Create the summary, validation and products artifacts of one flow run.

    Must be called inside a flow or task run. Every run gets a summary (with its outcome and,
    unless it completed, what to do) and a validation table (a single row saying so when no day
    was analysed); the products link once a catalog exists. Returns the keys used.
    """
    rt = open_runtime(run)
    paths = data_paths(rt)
    keys: dict[str, str] = {}
    notes = _notes(runs, plan, outcome or RunOutcome("completed"))
    markdown = summary_markdown(list(runs), plan, report)
    markdown += f"\n**Products**: `{paths['products']}` (STAC catalog `{paths['catalog']}`)\n"
    if validation is not None and validation.rows():
        markdown += "\n## Validation\n\n" + validation.markdown()
    if notes:
        markdown = "\n\n".join(notes) + "\n\n" + markdown
    keys["summary"] = artifact_key(flow, rt.region, "summary")
    create_markdown_artifact(
        markdown, key=keys["summary"], description=f"smda {flow} run for region {rt.region}"
    )
    rows = validation.rows() if validation is not None else []
    keys["validation"] = artifact_key(flow, rt.region, "validation")
    create_table_artifact(
        rows or [{"day": "", "note": "no day was analysed by this run"}],
        key=keys["validation"],
        description="O−F (SMAP − forecast, m3 m-3) per analysed day; % of land assimilated",
    )
    catalog = paths["catalog"]  # its public URL with SMDA_PRODUCTS_PUBLIC_URL, else a path
    if "://" in paths["products"] or rt.publisher.catalog_path.exists():
        keys["products"] = artifact_key(flow, rt.region, "products")
        create_link_artifact(
            catalog_url(catalog),
            link_text=f"STAC catalog of the smda products ({rt.region})",
            key=keys["products"],
            description="Published COGs (analysis, flags, obs count, uncertainty) and STAC items",
        )
    return keys


def served_url(path: Path, root: Path, base_url: str | None) -> str | None:
    """The HTTP(S) URL of ``path`` (a file under the products ``root``) when ``root`` is served
    at ``base_url``; None when it is not served (no base URL, or not an HTTP(S) one)."""
    if not base_url or not base_url.startswith(("http://", "https://")):
        return None
    return f"{base_url.rstrip('/')}/{path.relative_to(root).as_posix()}"


def quicklook_markdown(day: date, region: str, path: Path | str, url: str | None) -> str:
    """The text of the quick-look artifact: the image from ``url``, or the file's path and how
    to make it viewable when the products are not served."""
    title = f"## Soil moisture analysis of {day} ({region})\n\n"
    if url is not None:
        return (
            f"{title}![quick-look of {day}]({url})\n\n"
            f"Fixed colour scale 0–0.5 m3 m-3, land only. [PNG]({url})\n"
        )
    return (
        f"{title}Quick-look map (PNG): `{path}`\n\n"
        "The products are not served over HTTP(S), so the UI cannot show the image: serve the "
        "products folder and set `SMDA_PRODUCTS_PUBLIC_URL` to its URL to see the map here, or "
        "open the file above on the machine that ran the flow.\n"
    )


def publish_quicklook_artifact(flow: str, run: RunContext, day: date) -> str | None:
    """Create the ``…-quicklook`` artifact of ``day`` from the quick-look PNG its publishing
    wrote (:meth:`smda.storage.publish.Publisher.quicklook_path`); return its key, or None when
    there is no PNG (the day was not published).

    Must be called inside a flow or task run.
    """
    rt = open_runtime(run)
    path = rt.publisher.quicklook_path(day)
    if not rt.publisher.exists(path):
        return None
    url = served_url(path, rt.publisher.root, rt.publisher.base_url)
    key = artifact_key(flow, rt.region, "quicklook")
    where = rt.publisher.location(path)
    create_markdown_artifact(
        quicklook_markdown(day, region_label(rt.grid.lats, rt.grid.lons), where, url),
        key=key,
        description=f"quick-look of the smda analysis of {day} ({rt.region})",
    )
    return key
