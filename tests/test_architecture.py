"""The package tree is the architecture: layers import only downwards, the pure packages import
no I/O, the library never imports the twin, reads no environment and does not print."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SMDA = Path(__file__).resolve().parents[1] / "smda"
LAYERS = ("geo", "science", "storage", "ingest", "ops", "cli")
"""smda's sub-packages, lowest first: each may import only its own and lower layers (and the
root modules ``smda.errors``, ``smda.config``, ``smda.__version__``)."""
PURE = ("geo", "science", "ingest/staging")
"""Packages that compute only: arrays in, arrays out."""
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
    "smda.storage",
    "smda.ingest.clients",
    "smda_twin",
}
TWIN_USERS = {"cli/twin.py", "cli/demo.py"}
"""The only product modules that may import the offline twin: the ``smda twin`` commands and
the demo (``smda evaluate --truth twin`` goes through :func:`smda.cli.twin.truth_of`)."""


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _modules(*under: str) -> list[Path]:
    return sorted(p for u in under for p in (SMDA / u).rglob("*.py"))


def _layer(module: str) -> int | None:
    """Index in :data:`LAYERS` of an imported smda module (None: a root module or not smda)."""
    parts = module.split(".")
    if parts[0] != "smda" or len(parts) < 2 or parts[1] not in LAYERS:
        return None
    return LAYERS.index(parts[1])


@pytest.mark.parametrize("module", _modules(*PURE), ids=lambda p: str(p.relative_to(SMDA)))
def test_pure_packages_are_free_of_io(module: Path) -> None:
    imported = _imports(module)
    bad = {name for name in imported for f in FORBIDDEN if name == f or name.startswith(f + ".")}
    assert not bad, f"{module.relative_to(SMDA)} imports I/O modules {sorted(bad)}"


@pytest.mark.parametrize("layer", LAYERS)
def test_layers_import_only_downwards(layer: str) -> None:
    mine = LAYERS.index(layer)
    offenders = {}
    for path in _modules(layer):
        up = sorted(n for n in _imports(path) if (_layer(n) or -1) > mine)
        if up:
            offenders[str(path.relative_to(SMDA))] = up
    assert not offenders, f"smda/{layer} imports from higher layers: {offenders}"


def test_root_modules_import_no_layer_but_geometry() -> None:
    for name in ("errors.py", "config.py", "__init__.py"):
        layers = {_layer(n) for n in _imports(SMDA / name)} - {None, LAYERS.index("geo")}
        assert not layers, f"smda/{name} imports a layer above geo"


def test_the_library_never_imports_the_twin() -> None:
    offenders = []
    for path in SMDA.rglob("*.py"):
        rel = str(path.relative_to(SMDA))
        if rel in TWIN_USERS:
            continue
        if any(n == "smda_twin" or n.startswith("smda_twin.") for n in _imports(path)):
            offenders.append(rel)
    assert not offenders, f"only {sorted(TWIN_USERS)} may import smda_twin: {offenders}"


def test_nothing_below_the_edge_reads_the_environment() -> None:
    """Settings are read at the edge (the CLI, a flow's entry) by :func:`smda.config.load_settings`;
    the library takes them as arguments. The clients module only *sets* the variables the
    providers' own clients read."""
    offenders = []
    for path in SMDA.rglob("*.py"):
        rel = str(path.relative_to(SMDA))
        if rel.startswith("cli/") or rel in ("config.py", "ingest/clients.py"):
            continue
        text = path.read_text()
        for needle in ("os.environ", "os.getenv", "load_settings("):
            if needle in text:
                offenders.append(f"{rel}: {needle}")
    assert not offenders, f"the library reads the environment: {offenders}"


def test_library_does_not_print() -> None:
    offenders = []
    for path in SMDA.rglob("*.py"):
        if path.relative_to(SMDA).parts[0] == "cli" or path.name == "__main__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                offenders.append(f"{path.relative_to(SMDA)}:{node.lineno}")
    assert not offenders, f"library code prints (use logging): {offenders}"


def test_no_module_is_a_god_module() -> None:
    """One concept per module: none of the library's passes 600 lines, none of ops' about 400."""
    long = {
        str(p.relative_to(SMDA)): n
        for p in SMDA.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > (420 if p.parent.name == "ops" else 600)
    }
    assert not long, f"modules too long to read: {long}"
