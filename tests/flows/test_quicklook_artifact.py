"""The quick-look artifact's text: the image from its HTTP(S) URL when the products are served,
else the file's path and how to make the image viewable (a browser cannot open a local file
from the Prefect UI). The daily flow files it: tests/flows/test_daily.py."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from flow_helpers import artifacts_of
from state_helpers import REGION, provenance, small_result, small_uncertainty

from flows.artifacts import publish_quicklook_artifact, quicklook_markdown, served_url
from smda.config import Settings
from smda.ops import RunContext, open_runtime

ROOT = Path("/srv/smda/products/r0.25_200_300_40x40")
PNG = ROOT / "cog" / "2024" / "smda_sm_20240720.png"
DAY = date(2024, 7, 20)


def test_a_served_quicklook_has_its_public_url() -> None:
    url = "https://data.example.org/smda/cog/2024/smda_sm_20240720.png"
    assert served_url(PNG, ROOT, "https://data.example.org/smda/") == url
    assert served_url(PNG, ROOT, "http://localhost:8080/smda") == (
        "http://localhost:8080/smda/cog/2024/smda_sm_20240720.png"
    )


def test_an_unserved_or_non_http_location_has_no_url() -> None:
    assert served_url(PNG, ROOT, None) is None
    assert served_url(PNG, ROOT, "") is None
    assert served_url(PNG, ROOT, "s3://bucket/smda") is None  # not something a browser opens


def test_the_markdown_shows_the_image_when_served() -> None:
    url = "https://data.example.org/smda/cog/2024/smda_sm_20240720.png"
    text = quicklook_markdown(date(2024, 7, 20), "105°W–95°W, 30°N–40°N", PNG, url)
    assert f"![quick-look of 2024-07-20]({url})" in text
    assert "105°W–95°W, 30°N–40°N" in text and "file://" not in text and str(PNG) not in text


def test_the_markdown_gives_the_path_and_what_to_do_when_not_served() -> None:
    text = quicklook_markdown(date(2024, 7, 20), "105°W–95°W, 30°N–40°N", PNG, None)
    assert "![" not in text  # no image a browser could not load
    assert f"`{PNG}`" in text and "SMDA_PRODUCTS_PUBLIC_URL" in text


def test_a_run_with_served_products_shows_the_image(prefect_api: str, tmp_path: Path) -> None:
    """With ``SMDA_PRODUCTS_PUBLIC_URL`` the artifact links the PNG at its public URL."""
    from prefect import flow

    settings = Settings(
        data_dir=tmp_path / "data", products_public_url="https://data.example.org/smda"
    )
    run = RunContext.create(settings, region=REGION)
    rt = open_runtime(run)
    result = small_result(DAY, grid=rt.grid)
    rt.chain.write(result, uncertainty=small_uncertainty(result), provenance=provenance())
    rt.publisher.publish(DAY, rt.chain.read(DAY), provenance())

    @flow
    def files_the_quicklook() -> tuple[str | None, str | None]:
        return (
            publish_quicklook_artifact("daily", run, DAY),
            publish_quicklook_artifact("daily", run, DAY + timedelta(days=1)),  # not published
        )

    state = files_the_quicklook(return_state=True)
    key, missing = state.result()
    assert key == "smda-daily-r0-25-216-320-4x4-quicklook" and missing is None
    text = artifacts_of(state.state_details.flow_run_id)["quicklook"].data
    url = f"https://data.example.org/smda/{rt.region}/cog/2024/smda_sm_20240720.png"
    assert f"![quick-look of {DAY}]({url})" in text
    assert rt.publisher.quicklook_path(DAY).is_file()
