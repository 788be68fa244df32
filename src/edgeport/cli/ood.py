"""``edgeport ood fit``: refit the OOD detector of a species + disease deliverables folder."""

from __future__ import annotations

import argparse

HELP = "out-of-distribution detector of an image deliverables folder: fit"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from edgeport.families.hierarchy.cli import add_ood_arguments

    add_ood_arguments(p)


def run(args: argparse.Namespace) -> int:
    from edgeport.families.hierarchy.cli import run_ood

    return run_ood(args)
