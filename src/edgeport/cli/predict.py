"""``edgeport predict``: run exported artifacts. ``--model-dir DIR IMAGE...``: species + disease image models."""

from __future__ import annotations

import argparse

HELP = "run an exported model: --model-dir DIR IMAGE... (species, routed disease, OOD flag)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from edgeport.families.hierarchy.cli import add_predict_arguments

    add_predict_arguments(p)


def run(args: argparse.Namespace) -> int:
    from edgeport.families.hierarchy.cli import run_predict

    return run_predict(args)
