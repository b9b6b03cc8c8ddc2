"""``python -m smda`` runs the command-line interface."""

from smda.cli import run

run()
