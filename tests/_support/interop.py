"""Where the models made by other tools live (``shared/interop/``, beside the clone; not part of edgeport)."""

from __future__ import annotations

import os
from pathlib import Path

#: the environment variable that names the folder explicitly
ENV = "EDGEPORT_INTEROP_DIR"
REPO = Path(__file__).resolve().parents[2]


def interop_candidates() -> list[Path]:
    """``$EDGEPORT_INTEROP_DIR``, then ``<repo>/../shared/interop`` (the clone beside ``shared/``), then
    ``shared/interop`` beside any parent folder of the repo, then ``/work/shared/interop``."""
    found = [Path(os.environ[ENV])] if os.environ.get(ENV) else []
    found += [p / "shared" / "interop" for p in REPO.parents]
    found.append(Path("/work/shared/interop"))
    return list(dict.fromkeys(found))


def find_interop(name: str) -> Path | None:
    """The first candidate folder holding ``name`` (e.g. ``birdnet-stm32``), or None."""
    for base in interop_candidates():
        if (base / name).is_dir():
            return base / name
    return None
