"""``python -m smda`` runs the command-line interface."""

from smda.cli import run

if __name__ == "__main__":  # not when a worker process of a local Dask cluster re-imports it
    run()
