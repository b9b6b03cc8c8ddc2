"""The image is really built and run: docker/build-local.sh (slow; root, buildah, debootstrap).

No Docker engine and no container registry here: the script builds a Debian trixie base with
debootstrap (Python 3.13), builds docker/Dockerfile on it with ``buildah bud --isolation chroot``
(pip installs requirements/runtime.lock with hashes) and runs ``smda demo`` in the image with
``buildah run``. The demo is the real product (train, backfill, three daily runs, COG + STAC,
OSSE table) on the offline twin, served from inside the container on loopback.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest
import rasterio
from test_docker import instructions

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "docker" / "build-local.sh"
REGION = "r0.25_200_300_40x40"  # the demo region, 30–40° N, 105–95° W


def test_the_dockerfile_runs_python3_so_a_debian_base_builds_it() -> None:
    """Debian's python3 packages install no `python` command; the official image has both."""
    runs = " ".join(a for k, a in instructions() if k == "RUN")
    assert not re.search(r"(^|[\s;&|])python(\s|$)", runs), "call python3, not python"
    assert "python3 -m venv" in runs


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_the_image_builds_on_a_debootstrap_base_and_runs_the_demo(
    tmp_path: Path, record_property: pytest.RecordProperty, capsys: pytest.CaptureFixture[str]
) -> None:
    assert os.geteuid() == 0, "docker/build-local.sh needs root (debootstrap, buildah storage)"
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CDSAPI", "EARTHDATA"))}
    started = time.monotonic()
    proc = subprocess.run(
        ["bash", str(SCRIPT), "--demo", "--data", str(data), "--tag", "localhost/smda:test"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1700,
        check=False,
    )
    total = time.monotonic() - started
    out = proc.stdout
    assert proc.returncode == 0, (out + proc.stderr)[-4000:]

    wanted = ("base seconds", "image seconds", "demo seconds", "image size")
    figures = dict(re.findall(rf"^({'|'.join(wanted)}): (.+)$", out, re.MULTILINE))
    assert set(figures) == set(wanted), out[-2000:]
    assert re.search(r"^image python: Python 3\.13\.", out, re.MULTILINE), "a Debian trixie base"
    # the demo's own report, printed inside the container
    said = " ".join(out.split())  # rich may wrap lines
    assert "OSSE" in said and "open_loop" in said and "(trained)" in said, out[-3000:]
    computed = re.search(r"\b(\d+) day\(s\) computed", said)
    # the backfill and three daily runs (which may also recompute days the twin revised)
    assert computed and int(computed.group(1)) >= 40 + 3, out[-3000:]
    # and its products, written by the image's user into the mounted /data
    cogs = sorted((data / "products" / REGION / "cog").rglob("*.tif"))
    analyses = [p for p in cogs if not p.stem.endswith("_flags")]
    # the backfill and three daily runs, each day a float COG, an integer COG and a quick-look
    assert len(analyses) == 40 + 3 and len(cogs) == 2 * len(analyses)
    assert len(list((data / "products" / REGION / "cog").rglob("*.png"))) == len(analyses)
    with rasterio.open(analyses[-1]) as src:
        assert src.crs.to_epsg() == 4326 and src.res == (0.25, 0.25)
    assert (data / "products" / REGION / "stac" / "catalog.json").is_file()
    assert all(p.stat().st_uid == 1000 for p in cogs), "the image runs as uid 1000"

    for name, value in figures.items():
        record_property(name.replace(" ", "_"), value)
    record_property("total_seconds", round(total))
    with capsys.disabled():
        print(
            f"\nimage: base {figures['base seconds']} s, build {figures['image seconds']} s, "
            f"demo {figures['demo seconds']} s, size {figures['image size']}, "
            f"total {total:.0f} s"
        )
