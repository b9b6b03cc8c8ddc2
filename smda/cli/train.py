"""``smda train``: train a model on the staged inputs of a period and register it.

Wired in :mod:`smda.cli` as ``app.command("train")(cli_train.train)``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from smda.cli.common import console, parse_date, parse_region, settings
from smda.config import DASK_SCHEDULER_ENV
from smda.errors import SmdaError

__all__ = ["train"]

_HELP_REGION = "Region 'west,south,east,north' (default: SMDA_REGION or the globe)."


def train(
    start: Annotated[str, typer.Option(help="First day YYYY-MM-DD of the training period.")],
    end: Annotated[str, typer.Option(help="Last day YYYY-MM-DD of the training period.")],
    region: Annotated[str | None, typer.Option(help=_HELP_REGION)] = None,
    min_n: Annotated[
        int, typer.Option(help="Fewest common days for valid triple collocation per pixel.")
    ] = 100,
    folds: Annotated[int, typer.Option(help="Cross-validation folds.")] = 10,
    block_deg: Annotated[
        float, typer.Option(help="Tile size (degrees) of the blocked cross-validation.")
    ] = 5.0,
    compare_random: Annotated[
        bool,
        typer.Option(
            help="Also run random-cell CV and report it beside the blocked CV (doubles the CV cost)."
        ),
    ] = False,
    learning_rate: Annotated[float, typer.Option(help="LightGBM learning rate.")] = 0.05,
    num_leaves: Annotated[int, typer.Option(help="LightGBM leaves per tree.")] = 63,
    min_data_in_leaf: Annotated[int, typer.Option(help="LightGBM minimum rows per leaf.")] = 100,
    max_rounds: Annotated[
        int, typer.Option(help="Most trees (early stopping ends sooner).")
    ] = 1000,
    early_stopping_rounds: Annotated[
        int,
        typer.Option(
            min=1, help="Early stopping: trees in a row without an improvement that end a fit."
        ),
    ] = 20,
    min_delta: Annotated[
        float,
        typer.Option(
            help="Early stopping: smallest drop of the held-out RMSE (m3 m-3) over "
            "--early-stopping-rounds trees that keeps training (0: any drop)."
        ),
    ] = 1e-4,
    dagger_rounds: Annotated[
        int, typer.Option(help="DAgger refits against exposure bias (0: none).")
    ] = 1,
    threads: Annotated[int, typer.Option(help="LightGBM threads.")] = 2,
    dask_scheduler: Annotated[
        str | None,
        typer.Option(
            envvar=DASK_SCHEDULER_ENV,
            metavar="ADDRESS",
            help="Dask scheduler (tcp://host:8786) that builds the features and CDF tables.",
        ),
    ] = None,
    row_budget: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Most cell-days to train on: whole cells sampled by a seeded hash "
            "(uses Dask; a LocalCluster sized to the machine without --dask-scheduler).",
        ),
    ] = None,
    sample_seed: Annotated[int, typer.Option(help="Seed of the --row-budget sampling.")] = 0,
) -> None:
    """Train a model on the staged inputs of START..END and make it the region's current model.

    Labels are the TC-merged SMAP, ERA5-Land and GLDAS of the period; the model is
    cross-validated (blocked tiles; random cells too with --compare-random), and SMAP's CDF tables are
    fitted against the free-running model. START itself only provides the first state: the
    model is fitted on START+1..END. Needs ERA5, SMAP, ERA5-Land, GLDAS and the static fields
    staged over the period, and MSWEP from 28 days before START (`smda fetch`); an error lists
    whatever is missing.

    At scale (--dask-scheduler, SMDA_DASK_SCHEDULER or --row-budget) the labels are merged in
    bands of grid rows (kept under the data directory's work/<region>/train-labels for a
    re-run), the features built and the CDF tables fitted on a Dask cluster block by block, and
    the model is fitted on the cells sampled to the row budget; otherwise everything is in
    memory in this process.
    """
    cfg = settings()
    from rich.status import Status

    from smda.geo.grid import region_grid
    from smda.ops.train import describe, train_from_store
    from smda.ops.train_scale import ScaleOptions
    from smda.science.bundle import HyperParams
    from smda.science.model import CVConfig, TrainConfig
    from smda.storage.registry import ModelRegistry, models_dir
    from smda.storage.store import Store, region_key

    first, last = parse_date(start, "--start"), parse_date(end, "--end")
    if last <= first:
        raise typer.BadParameter(f"--end {last} must be after --start {first}", param_hint="--end")
    bbox = parse_region(region, cfg) if region else cfg.bbox
    grid = region_grid(bbox)
    store = Store(cfg.data_dir, grid)
    config = TrainConfig(
        hyper=HyperParams(
            learning_rate=learning_rate,
            num_leaves=num_leaves,
            min_data_in_leaf=min_data_in_leaf,
            max_rounds=max_rounds,
            early_stopping_rounds=early_stopping_rounds,
            early_stopping_min_delta=min_delta,
            num_threads=threads,
        ),
        cv=CVConfig(n_folds=folds, block_deg=block_deg),
        compare=("random",) if compare_random else (),
        dagger_rounds=dagger_rounds,
    )
    scale = None
    dask_scheduler = dask_scheduler or cfg.dask_scheduler  # the option, else the settings
    if dask_scheduler or row_budget is not None:
        scale = ScaleOptions(scheduler=dask_scheduler, row_budget=row_budget, seed=sample_seed)
    try:
        with Status("training", console=console) as status:
            outcome = train_from_store(
                store,
                first,
                last,
                config=config,
                min_n=min_n,
                progress=status.update,
                scale=scale,
            )
        registry = ModelRegistry(models_dir(cfg.data_dir, region_key(grid)))
        path = registry.register(outcome.bundle)
    except SmdaError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    typer.echo(describe(outcome))
    typer.echo("")
    typer.echo(f"registered model {outcome.bundle.version} (current) in {path}")
