"""The science core imports no I/O: no network, no Prefect, no file formats."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SMDA = Path(__file__).resolve().parents[1] / "smda"
CORE = [
    "grid.py",
    "regrid.py",
    "landmask.py",
    "ease2.py",
    "staging/__init__.py",
    "staging/era5.py",
    "staging/smap.py",
    "staging/precipitation.py",
    "staging/labels.py",
    "tc.py",
    "labels.py",
    "metrics.py",
    "skill.py",
    "features.py",
    "model.py",
    "bundle.py",
    "nudging.py",
    "gain.py",
    "cycle.py",
    "uncertainty.py",
]
FORBIDDEN = {
    "requests",
    "urllib",
    "http",
    "socket",
    "cdsapi",
    "earthaccess",
    "ecmwf",
    "prefect",
    "fsspec",
    "netCDF4",
    "h5py",
    "h5netcdf",
    "rasterio",
    "rio_cogeo",
    "pystac",
    "smda.twin",
    "smda.clients",
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", CORE)
def test_science_core_is_free_of_io(module: str) -> None:
    imported = _imports(SMDA / module)
    bad = {name for name in imported for f in FORBIDDEN if name == f or name.startswith(f + ".")}
    assert not bad, f"smda/{module} imports I/O modules {sorted(bad)}"


def test_library_does_not_print() -> None:
    offenders = []
    for path in SMDA.rglob("*.py"):
        if path.name in ("cli.py", "__main__.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                offenders.append(f"{path.relative_to(SMDA)}:{node.lineno}")
    assert not offenders, f"library code prints (use logging): {offenders}"


SCORING = {"evaluation.py", "cli.py", "demo.py"}
"""The only product modules that may import the offline twin: scoring against its truth
(``smda evaluate``), the ``smda twin`` commands and the demo."""


def test_only_scoring_and_the_twin_commands_import_the_twin() -> None:
    offenders = []
    for path in SMDA.rglob("*.py"):
        rel = path.relative_to(SMDA)
        if rel.parts[0] == "twin" or str(rel) in SCORING:
            continue
        if any(name == "smda.twin" or name.startswith("smda.twin.") for name in _imports(path)):
            offenders.append(str(rel))
    assert not offenders, f"only {sorted(SCORING)} may import smda.twin: {offenders}"
