"""LightGBM model: folds, skill, rollout, exposure-bias remedy, the versioned bundle."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from science_helpers import twin_inputs

from smda.geo.grid import BBox
from smda.science.bundle import Climatology, HyperParams, ModelBundle
from smda.science.drift import FeatureStats
from smda.science.features import FeatureMatrix, FeatureSpec, build_features, lagged
from smda.science.model import (
    BinnedRows,
    CVConfig,
    TrainConfig,
    assign_folds,
    cross_validate,
    fit_booster,
    fit_cv_to_region,
    rollout,
    train,
)
from smda.science.nudging import fit_cdf
from smda.storage.bundle_io import from_files, to_files
from smda_twin.world import World, WorldSpec

FAST = HyperParams(
    learning_rate=0.1, num_leaves=15, min_data_in_leaf=50, max_rounds=120, early_stopping_rounds=20
)
CV = CVConfig(n_folds=4, block_deg=0.5)


@pytest.fixture(scope="module")
def data() -> tuple[FeatureMatrix, np.ndarray]:
    """Teacher-forced features and ERA5-Land-like labels (biased, AR(1) errors), 64 cells ×
    181 days of the twin."""
    world = World(WorldSpec(seed=11, region=BBox(-100, 35, -98, 37), epoch=date(2015, 1, 1)))
    start, end = date(2015, 2, 1), date(2015, 7, 31)
    era5, precip, static = twin_inputs(world, start, end)
    label = world.product_daily("era5land", start - timedelta(days=1), end)
    days = pd.date_range(start, end)
    fm = build_features(
        FeatureSpec(), days, era5=era5, precip=precip, static=static, state=lagged(label, days)
    )
    y = label.sel(time=days).values.reshape(len(days), -1)[:, fm.cells]
    return fm, y


@pytest.fixture(scope="module")
def bundle(data: tuple[FeatureMatrix, np.ndarray]) -> ModelBundle:
    fm, y = data
    config = TrainConfig(hyper=FAST, cv=CV, compare=("random",))
    return train(fm, y, FeatureSpec(), config=config, input_hashes={"x": "1"})


def test_blocked_folds_keep_tiles_together() -> None:
    lat, lon = np.meshgrid(40.0 - 0.125 - 0.25 * np.arange(20), -100 + 0.125 + 0.25 * np.arange(20))
    lat, lon = lat.ravel(), lon.ravel()
    cv = CVConfig(n_folds=10, block_deg=1.0)
    folds = assign_folds(lat, lon, cv)
    tiles = np.floor(lat) * 1000 + np.floor(lon)
    for tile in np.unique(tiles):
        assert len(np.unique(folds[tiles == tile])) == 1
    sizes = np.bincount(folds, minlength=10)
    assert (sizes > 0).all() and sizes.max() - sizes.min() <= 16
    assert np.array_equal(folds, assign_folds(lat, lon, cv))  # deterministic
    random = np.bincount(assign_folds(lat, lon, replace(cv, scheme="random")))
    assert random.max() - random.min() <= 1
    with pytest.raises(ValueError, match="at least 10 groups"):
        assign_folds(lat, lon, CVConfig(n_folds=10, block_deg=5.0))


def test_a_small_region_gets_smaller_tiles_then_fewer_folds() -> None:
    lat, lon = np.meshgrid(np.arange(30.125, 40.0, 0.25), np.arange(-104.875, -95.0, 0.25))
    lat, lon = lat.ravel(), lon.ravel()  # the README's 10° × 10° example region

    fitted, note = fit_cv_to_region(CVConfig(n_folds=10, block_deg=5.0), lat, lon)
    assert (fitted.n_folds, fitted.block_deg) == (10, 2.5)
    assert note is not None and "4 group(s)" in note and "10 folds over 2.5° tiles" in note
    assert len(np.unique(assign_folds(lat, lon, fitted))) == 10

    small = (lat < 31) & (lon < -104)  # 1° × 1°
    fitted, note = fit_cv_to_region(CVConfig(n_folds=10, block_deg=5.0), lat[small], lon[small])
    assert (fitted.n_folds, fitted.block_deg) == (4, 0.625) and note is not None

    same, none = fit_cv_to_region(CVConfig(n_folds=4, block_deg=0.5), lat[small], lon[small])
    assert same == CVConfig(n_folds=4, block_deg=0.5) and none is None
    with pytest.raises(ValueError, match="at least 2 groups"):
        fit_cv_to_region(CVConfig(n_folds=10), lat[:1], lon[:1])


def test_rollout_feeds_predictions_back(data: tuple[FeatureMatrix, np.ndarray]) -> None:
    fm, _ = data
    col = fm.state_column
    out = rollout(lambda x: x[:, col] + 0.01, fm)
    first = fm.cube()[0, :, col]
    expected = np.minimum(first[None] + 0.01 * np.arange(1, len(fm.days) + 1)[:, None], fm.upper)
    np.testing.assert_allclose(out, expected, atol=1e-5)
    assert (out <= fm.upper).all()


def test_train_reports_blocked_and_random_cv(bundle: ModelBundle) -> None:
    report = bundle.cv_report
    assert set(report) == {"blocked", "random"}
    for scheme, rep in report.items():
        assert rep["scheme"] == scheme and rep["n_folds"] == 4
        assert len(rep["best_iterations"]) == 4
        for mode in ("teacher_forced", "free_running"):
            assert 0.5 < rep[mode]["r"] <= 1.0 and 0.0 < rep[mode]["ubrmsd"] < 0.1
        assert rep["teacher_forced"]["r"] >= rep["free_running"]["r"] - 0.01
    assert "0.5°×0.5° tiles" in report["blocked"]["protocol"]
    assert "random cells" in report["random"]["protocol"]
    assert json.loads(json.dumps(report)) == report
    assert bundle.feature_names == FeatureSpec().names
    assert bundle.num_trees == round(np.median(report["blocked"]["best_iterations"]))
    assert set(bundle.input_hashes) == {"features", "labels", "x"}


def test_the_comparison_scheme_runs_only_when_asked(
    data: tuple[FeatureMatrix, np.ndarray],
) -> None:
    fm, y = data
    assert TrainConfig().compare == ()
    config = TrainConfig(hyper=replace(FAST, max_rounds=10), cv=CV, dagger_rounds=0)
    assert set(train(fm, y, FeatureSpec(), config=config).cv_report) == {"blocked"}


def test_fold_subsets_fit_the_same_model_as_rows_binned_afresh(
    data: tuple[FeatureMatrix, np.ndarray],
) -> None:
    """Subsetting the rows binned once gives the booster, tree for tree, that binning the
    fold's rows with the same bin mappers gives; binning them with their own bins instead
    changes the trees but not the fit (RMSE on held-out cells no more than 10 % worse)."""
    fm, y = data
    hyper = replace(FAST, max_rounds=40)
    binned = BinnedRows.of(fm, y, hyper)
    folds = assign_folds(fm.lat, fm.lon, CV)
    fit, stop, test = folds >= 2, folds == 1, folds == 0
    pairs = ((fm.select(fit), y[:, fit]), (fm.select(stop), y[:, stop]))
    for rounds in (0, 1):
        subset = fit_booster(*pairs, hyper, dagger_rounds=rounds, binned=binned, cells=(fit, stop))
        afresh = fit_booster(*pairs, hyper, dagger_rounds=rounds, binned=binned)
        assert subset.model_to_string() == afresh.model_to_string()
    own = fit_booster(*pairs, hyper, dagger_rounds=0)
    held, obs = fm.select(test), y[:, test].reshape(-1)

    def rmse(booster: lgb.Booster) -> float:
        pred = np.asarray(booster.predict(held.values))
        return float(np.sqrt(np.nanmean((pred - obs) ** 2)))

    shared = fit_booster(*pairs, hyper, dagger_rounds=0, binned=binned, cells=(fit, stop))
    assert rmse(shared) < 1.1 * rmse(own)


def test_a_dagger_round_fits_the_rows_of_the_matrix_lagged_by_its_rollout(
    data: tuple[FeatureMatrix, np.ndarray],
) -> None:
    """The DAgger round (its rows handed to LightGBM as two blocks, never joined) fits the
    booster that the written-out definition gives: the teacher-forced rows, then the same
    rows with the lag replaced by the first fit's rollout, in one matrix, for the training
    and the early-stopping cells, binned like the first fit."""
    fm, y = data
    hyper = replace(FAST, max_rounds=30)
    binned = BinnedRows.of(fm, y, hyper)
    folds = assign_folds(fm.lat, fm.lon, CV)
    fit, stop = folds >= 1, folds == 0
    pairs = ((fm.select(fit), y[:, fit]), (fm.select(stop), y[:, stop]))
    first = fit_booster(*pairs, hyper, dagger_rounds=0, binned=binned, cells=(fit, stop))

    def joined(m: FeatureMatrix, labels: np.ndarray) -> lgb.Dataset:
        free = rollout(lambda rows: first.predict(rows).astype(np.float32), m)
        lag = np.concatenate([m.cube()[:1, :, m.state_column], free[:-1]])
        ok = np.isfinite(labels.reshape(-1))
        lagged_rows = m.values.copy()
        lagged_rows[:, m.state_column] = lag.reshape(-1)
        x = np.concatenate([m.values[ok], lagged_rows[ok]])
        return binned.rows(x, np.concatenate([labels.reshape(-1)[ok]] * 2))

    train_set, check = joined(*pairs[0]), joined(*pairs[1])
    by_hand = lgb.train(
        hyper.lgb_params(),
        train_set,
        num_boost_round=hyper.max_rounds,
        valid_sets=[check],
        callbacks=[lgb.early_stopping(hyper.early_stopping_rounds, verbose=False,
                                      min_delta=hyper.early_stopping_min_delta)],
    )  # fmt: skip
    dagger = fit_booster(*pairs, hyper, dagger_rounds=1, binned=binned, cells=(fit, stop))
    assert dagger.model_to_string() == by_hand.model_to_string()


def test_max_bin_bounds_the_bins_of_every_fit_and_its_dagger_rows(
    data: tuple[FeatureMatrix, np.ndarray],
) -> None:
    """``HyperParams.max_bin`` reaches the binning of the shared rows, the rows binned with
    their mappers (DAgger's) and a fit that bins its own rows."""
    fm, y = data
    hyper = replace(FAST, max_bin=15, max_rounds=5)
    binned = BinnedRows.of(fm, y, hyper)
    default = BinnedRows.of(fm, y, FAST)
    n = len(fm.names)
    assert max(binned.dataset.feature_num_bin(i) for i in range(n)) <= 15 + 1  # + the NaN bin
    assert max(default.dataset.feature_num_bin(i) for i in range(n)) > 16
    x, t = fm.values[:100], np.ones(100, np.float32)
    other = binned.rows(x, t).construct()
    assert [other.feature_num_bin(i) for i in range(n)] == [
        binned.dataset.feature_num_bin(i) for i in range(n)
    ]
    folds = assign_folds(fm.lat, fm.lon, CV)
    fit, stop = folds >= 1, folds == 0
    pairs = ((fm.select(fit), y[:, fit]), (fm.select(stop), y[:, stop]))
    own = fit_booster(*pairs, replace(hyper, max_rounds=30), dagger_rounds=0)
    splits = own.trees_to_dataframe().dropna(subset=["split_feature"])
    assert splits.groupby("split_feature")["threshold"].nunique().max() <= 15
    wide = fit_booster(*pairs, replace(FAST, max_rounds=30), dagger_rounds=0)
    splits = wide.trees_to_dataframe().dropna(subset=["split_feature"])
    assert splits.groupby("split_feature")["threshold"].nunique().max() > 15


def test_early_stopping_ends_a_creeping_loss_before_the_cap(
    data: tuple[FeatureMatrix, np.ndarray],
) -> None:
    """A noise-free smooth target: every tree still lowers the held-out loss a little, so
    plain early stopping runs to the cap; the tolerance (m3 m-3 RMSE) stops it long before."""
    fm, _ = data
    state = fm.cube()[:, :, fm.state_column]
    y = (0.05 + 0.8 * state + 0.02 * np.sin(40 * state)).astype(np.float32)
    cells = np.arange(fm.n_cells) % 4
    fit, stop = cells > 0, cells == 0
    pairs = ((fm.select(fit), y[:, fit]), (fm.select(stop), y[:, stop]))
    hyper = replace(FAST, max_rounds=400, early_stopping_rounds=20)
    creeping = fit_booster(*pairs, replace(hyper, early_stopping_min_delta=0.0), dagger_rounds=0)
    assert creeping.num_trees() == 400
    stopped = fit_booster(*pairs, hyper, dagger_rounds=0)
    assert stopped.best_iteration < 200 and stopped.num_trees() < 400


def test_dagger_improves_free_running_skill(data: tuple[FeatureMatrix, np.ndarray]) -> None:
    fm, y = data
    plain = cross_validate(fm, y, hyper=FAST, cv=CV, dagger_rounds=0)
    dagger = cross_validate(fm, y, hyper=FAST, cv=CV, dagger_rounds=1)
    assert dagger["free_running"]["r"] > plain["free_running"]["r"]
    assert dagger["free_running"]["ubrmsd"] < plain["free_running"]["ubrmsd"]


def test_bundle_version_and_round_trip(
    bundle: ModelBundle, data: tuple[FeatureMatrix, np.ndarray], tmp_path: Path
) -> None:
    fm, y = data
    meta, arrays = bundle.to_parts()
    again = ModelBundle.from_parts(json.loads(json.dumps(meta)), arrays)
    assert again.version == bundle.version and len(bundle.version) == 16
    np.testing.assert_array_equal(again.predict(fm.values), bundle.predict(fm.values))
    with_cdf = bundle.with_cdf(fit_cdf(y, y + 0.01, fm.cell_ids))
    assert with_cdf.version != bundle.version
    assert with_cdf.with_tc_stats({"rho2": [0.9]}).version != with_cdf.version
    stats = FeatureStats.fit(fm.values, bundle.spec.names)
    with_stats = with_cdf.with_feature_stats(stats)
    assert with_stats.version != with_cdf.version
    kept = from_files(to_files(with_stats, tmp_path / "with_stats")).feature_stats
    assert kept is not None
    np.testing.assert_array_equal(kept.sd, stats.sd)
    loaded = from_files(to_files(with_cdf, tmp_path / "bundle"))
    assert loaded.version == with_cdf.version
    assert loaded.cdf is not None
    np.testing.assert_array_equal(loaded.cdf.model, with_cdf.cdf.model)  # type: ignore[union-attr]
    meta_file = tmp_path / "bundle" / "bundle.json"
    meta_json = json.loads(meta_file.read_text())
    meta_json["hyper"]["num_leaves"] = 7
    meta_file.write_text(json.dumps(meta_json))
    with pytest.raises(ValueError, match="hashes to"):
        from_files(tmp_path / "bundle")
    bad = dict(meta, feature_names=list(reversed(meta["feature_names"])))
    with pytest.raises(ValueError, match="feature_names"):
        ModelBundle.from_parts(bad, arrays)


def test_climatology(data: tuple[FeatureMatrix, np.ndarray]) -> None:
    fm, y = data
    clim = Climatology.fit(y, fm)
    march = fm.days.month == 3
    np.testing.assert_allclose(clim.field(fm.cell_ids, 3), np.nanmean(y[march], axis=0), rtol=1e-5)
    np.testing.assert_allclose(clim.field(fm.cell_ids, 12), np.nanmean(y, axis=0), rtol=1e-5)
    unknown = clim.field(np.array([0]), 3)
    assert unknown[0] == pytest.approx(np.nanmean(y[march]), rel=1e-4)


def test_train_rejects_misaligned_labels(data: tuple[FeatureMatrix, np.ndarray]) -> None:
    fm, y = data
    with pytest.raises(ValueError, match="do not match"):
        train(fm, y[:-1], FeatureSpec(), config=TrainConfig(hyper=FAST, cv=CV))


@pytest.fixture(scope="module")
def compiled_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder of compiled libraries for the module (compiling takes tens of seconds)."""
    return tmp_path_factory.mktemp("compiled")


def test_compiled_predictor_matches_native(
    bundle: ModelBundle, data: tuple[FeatureMatrix, np.ndarray], compiled_dir: Path
) -> None:
    pytest.importorskip("tl2cgen")
    from smda.storage.bundle_io import compiled_predictor

    fm, _ = data
    predict = compiled_predictor(bundle, compiled_dir)
    lib = compiled_dir / f"{bundle.version}-q.so"
    assert lib.exists()
    np.testing.assert_allclose(predict(fm.values), bundle.predict(fm.values), atol=1e-6)
    stamp = lib.stat().st_mtime_ns
    again = compiled_predictor(bundle, compiled_dir)  # cached: not compiled again
    assert lib.stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(again(fm.values[:10]), predict(fm.values[:10]))


def test_compiled_predictor_loads_where_openmp_allows_fewer_threads(
    bundle: ModelBundle, data: tuple[FeatureMatrix, np.ndarray], compiled_dir: Path, tmp_path: Path
) -> None:
    """A Dask worker runs with OMP_NUM_THREADS=1: the predictor asked for 2 threads still loads
    (on what OpenMP allows) and predicts the same values."""
    pytest.importorskip("tl2cgen")
    import pickle
    import subprocess
    import sys

    from smda.storage.bundle_io import compiled_predictor

    fm, _ = data
    expected = compiled_predictor(bundle, compiled_dir, threads=2)(fm.values)
    for lib in compiled_dir.glob(f"{bundle.version}-q.*"):  # the library, compiled once
        (tmp_path / lib.name).write_bytes(lib.read_bytes())
    (tmp_path / "bundle.pkl").write_bytes(pickle.dumps(bundle))
    np.save(tmp_path / "rows.npy", fm.values)
    script = (
        "import pickle, sys, numpy as np\n"
        "from pathlib import Path\n"
        "from smda.storage.bundle_io import compiled_predictor\n"
        "d = Path(sys.argv[1])\n"
        "b = pickle.loads((d / 'bundle.pkl').read_bytes())\n"
        "np.save(d / 'out.npy', compiled_predictor(b, d, threads=2)(np.load(d / 'rows.npy')))\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        check=False,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), expected)
