"""``cases.SIGNAL_CASES``: edgeport in a subprocess that sends itself SIGINT or SIGKILL at a named point
of export or train (tests/reliability/_driver.py). Afterwards the folder holds the earlier set, whole (same
hashes), or the documented set; nothing named edgeport-* is left in $TMPDIR; a killed run's staging folder
is removed by the next run that writes there."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgeport.fileio import STAGING, clean_stale_staging
from tests.reliability.cases import SIGNAL_CASES, Ctx
from tests.reliability.conftest import one_line, snapshot

ROOT = Path(__file__).resolve().parents[2]


def _visible(snap: dict[str, str]) -> dict[str, str]:
    """Without the staging folders a SIGKILL leaves (hidden; removed by the next run)."""
    return {k: v for k, v in snap.items() if STAGING not in Path(k).parts and not k.startswith("logs")}


@pytest.mark.slow
@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in SIGNAL_CASES])
def test_signal(case, tmp_path, request, capsys):
    ctx = Ctx(tmp=tmp_path)
    if case.needs == "geo":
        ctx.src = request.getfixturevalue("geo_src")
    else:
        ctx.data = tmp_path / "data"
        shutil.copytree(request.getfixturevalue("rel_audio"), ctx.data)
    if case.setup is not None:
        case.setup(ctx)
    capsys.readouterr()
    before = _visible(snapshot(tmp_path))
    systmp = tmp_path / "systmp"
    systmp.mkdir()
    env = {**os.environ, "TMPDIR": str(systmp), "EDGEPORT_LOG_DIR": str(tmp_path / "logs"),
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "tests.reliability._driver", case.point, case.signal,
                           *[ctx.fmt(a) for a in case.argv]], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=600, check=False)

    assert proc.returncode == case.code, proc.stderr[-3000:]
    if case.signal == "SIGINT":
        assert "interrupted" in one_line(proc.stderr)
    else:
        assert "Traceback" not in proc.stderr
    assert not [p.name for p in systmp.iterdir() if p.name.startswith("edgeport")]
    shutil.rmtree(systmp)  # the frameworks' own temporary files
    after = _visible(snapshot(tmp_path))
    out = Path(ctx.fmt(case.outdir))
    if case.leaves == "unchanged":
        assert after == before
    else:
        rel = str(out.relative_to(tmp_path))
        names = sorted(p.name for p in out.iterdir() if p.name != STAGING)
        assert names == sorted(case.outputs)
        def strip(snap):
            return {k: v for k, v in snap.items() if not (k == rel or k.startswith(rel + "/"))}

        assert strip(after) == strip(before)
    if case.signal == "SIGKILL" and out.exists():
        clean_stale_staging(out)  # what the next run writing there does first
        assert not (out / STAGING).exists()
    if case.signal == "SIGINT" and out.exists():
        assert not (out / STAGING).exists()
