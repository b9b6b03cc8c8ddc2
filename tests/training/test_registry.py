"""The model registry: idempotent registration, the current version, history, corrupt bundles,
compiled or native predictors."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from smda.errors import MalformedFile, NoModel
from smda.ops.train import TrainOutcome
from smda.science.bundle import ModelBundle
from smda.storage import registry as registry_module
from smda.storage.bundle_io import from_files
from smda.storage.registry import ModelRegistry


@pytest.fixture
def bundle(outcome: TrainOutcome) -> ModelBundle:
    return outcome.bundle


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(tmp_path / "models" / "r0.25_216_320_4x4")


def _rows(bundle: ModelBundle) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.uniform(0.0, 1.0, (50, len(bundle.feature_names))).astype(np.float32)


def _stamps(path: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in sorted(path.iterdir())}


def test_register_is_idempotent(registry: ModelRegistry, bundle: ModelBundle) -> None:
    path = registry.register(bundle)
    assert path == registry.root / bundle.version
    assert from_files(path).version == bundle.version
    assert registry.current_version() == bundle.version
    files, pointer = _stamps(path), (registry.root / "current.json").read_bytes()
    assert registry.register(bundle) == path  # same version: nothing rewritten
    assert _stamps(path) == files
    assert (registry.root / "current.json").read_bytes() == pointer
    assert [h["version"] for h in registry.history()] == [bundle.version]
    assert registry.versions() == [bundle.version]
    assert not [p for p in registry.root.iterdir() if p.name.startswith(".")]  # no temp left


def test_current_versions_history_and_promote(registry: ModelRegistry, bundle: ModelBundle) -> None:
    other = bundle.with_tc_stats({**bundle.tc_stats, "note": "second"})
    registry.register(bundle)
    registry.register(other)
    assert registry.current_version() == other.version
    assert registry.current().version == other.version
    assert registry.versions() == [bundle.version, other.version]
    registry.promote(bundle.version)  # roll back
    assert registry.current().version == bundle.version
    history = registry.history()
    assert [h["version"] for h in history] == [bundle.version, other.version, bundle.version]
    assert all(h["promoted_at"].endswith("+00:00") for h in history)
    loaded = registry.load(other.version)
    np.testing.assert_array_equal(loaded.predict(_rows(bundle)), other.predict(_rows(bundle)))
    again = ModelRegistry(registry.root)  # a new process sees the same state
    assert again.current_version() == bundle.version
    assert again.register(other, promote=False) == registry.path(other.version)
    assert again.current_version() == bundle.version


def test_no_model(registry: ModelRegistry, bundle: ModelBundle) -> None:
    assert registry.current_version() is None
    assert registry.versions() == [] and registry.history() == []
    with pytest.raises(NoModel, match=r"run `smda train --start … --end …`"):
        registry.current()
    registry.register(bundle)
    with pytest.raises(NoModel, match="0123456789abcdef is not in the registry"):
        registry.load("0123456789abcdef")
    with pytest.raises(NoModel, match="cannot promote"):
        registry.promote("0123456789abcdef")


def test_corrupt_bundle_and_pointer(registry: ModelRegistry, bundle: ModelBundle) -> None:
    path = registry.register(bundle)
    meta = json.loads((path / "bundle.json").read_text())
    meta["hyper"]["num_leaves"] = 255
    (path / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(MalformedFile, match=r"is corrupt .*hashes to"):
        registry.current()
    registry.register(bundle)  # registering again repairs it
    assert registry.current().version == bundle.version
    (path / "arrays.npz").unlink()
    with pytest.raises(MalformedFile, match="is corrupt"):
        registry.load(bundle.version)
    registry.register(bundle)
    (registry.root / "current.json").write_text("{not json")
    with pytest.raises(MalformedFile, match=r"current.json is unreadable"):
        registry.current_version()


def test_a_bundle_is_read_once_per_version_of_its_files(
    registry: ModelRegistry, bundle: ModelBundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = registry.register(bundle)
    reads: list[Path] = []

    def counted(folder: Path) -> ModelBundle:
        reads.append(folder)
        return from_files(folder)

    monkeypatch.setattr(registry_module, "from_files", counted)
    first = registry.current()
    again = ModelRegistry(registry.root).current()  # another runtime of the same process
    assert again is first and len(reads) == 1
    # a changed file is read (and checked) again
    meta = json.loads((path / "bundle.json").read_text())
    meta["hyper"]["num_leaves"] = 255
    (path / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(MalformedFile, match=r"is corrupt .*hashes to"):
        registry.current()
    assert len(reads) == 2


def test_predictor_compiled_matches_native(registry: ModelRegistry, bundle: ModelBundle) -> None:
    pytest.importorskip("tl2cgen")
    rows = _rows(bundle)
    native = registry.predictor(bundle, compiled=False)
    compiled = registry.predictor(bundle)
    assert list((registry.root / "compiled").glob(f"{bundle.version}*.so"))
    np.testing.assert_allclose(compiled(rows), native(rows), atol=1e-6)
    assert registry.predictor(bundle) is compiled  # cached per version


def test_predictor_falls_back_with_one_warning(
    registry: ModelRegistry,
    bundle: ModelBundle,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise ImportError("compiled inference needs the optional packages tl2cgen")

    monkeypatch.setattr(registry_module, "compiled_predictor", broken)
    other = bundle.with_tc_stats({"note": "other"})
    with caplog.at_level(logging.WARNING, logger="smda.storage.registry"):
        first = registry.predictor(bundle)
        second = registry.predictor(other)
    warnings = [r for r in caplog.records if "compiled inference unavailable" in r.message]
    assert len(warnings) == 1 and "tl2cgen" in warnings[0].message
    rows = _rows(bundle)
    np.testing.assert_array_equal(first(rows), bundle.predict(rows))
    np.testing.assert_array_equal(second(rows), other.predict(rows))
