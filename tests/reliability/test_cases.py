"""Every row of ``cases.CASES``, run in process: the exit code, one line on stderr without a traceback,
and the folder afterwards (every file under the case's folder as before, or exactly the documented outputs)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from edgeport.fileio import STAGING
from tests._support.strict_json import strict_load_all
from tests.reliability.cases import CASES, Ctx
from tests.reliability.conftest import one_line, snapshot


def _params():
    for c in CASES:
        marks = [pytest.mark.slow] if c.slow else []
        yield pytest.param(c, id=c.id, marks=marks)


def _without(snap: dict[str, str], folder: str) -> dict[str, str]:
    return {k: v for k, v in snap.items() if not (k == folder or k.startswith(folder + "/"))}


@pytest.mark.parametrize("case", _params())
def test_case(case, tmp_path, request, capsys, monkeypatch, caplog):
    from edgeport.cli.main import main

    ctx = Ctx(tmp=tmp_path)
    if case.needs == "geo":
        ctx.src = request.getfixturevalue("geo_src")
    elif case.needs == "audio":
        ctx.data = tmp_path / "data"
        shutil.copytree(request.getfixturevalue("rel_audio"), ctx.data)
    if case.setup is not None:
        case.setup(ctx)
    capsys.readouterr()
    before = _without(snapshot(tmp_path), "logs")
    if case.patch is not None:
        case.patch(ctx, monkeypatch)

    try:
        code = main([ctx.fmt(a) for a in case.argv])
    except SystemExit as e:  # argparse's own exit (bad flags): what the shell sees
        code = e.code
    err = capsys.readouterr().err

    assert code == case.code, err
    if case.message:
        line = one_line(err)
        assert re.search(case.message, line), line
    else:
        assert "Traceback" not in err, err
    after = _without(snapshot(tmp_path), "logs")
    if case.leaves == "unchanged":
        assert after == before
    else:
        out = Path(ctx.fmt(case.outdir))
        rel = str(out.relative_to(tmp_path))
        assert sorted(p.name for p in out.iterdir()) == sorted(case.outputs)  # hidden staging included: none
        assert not (out / STAGING).exists()
        assert _without(after, rel) == _without(before, rel)  # nothing else touched (sources, outside files)
        strict_load_all(out)  # what was written is standard JSON
    if case.check is not None:
        case.check(ctx)


def test_the_table_has_every_kind_and_enough_cases():
    from tests.reliability.cases import KINDS, SIGNAL_CASES

    kinds = [c.kind for c in CASES] + [c.kind for c in SIGNAL_CASES]
    assert set(kinds) == set(KINDS)
    assert len({c.id for c in CASES} | {c.id for c in SIGNAL_CASES}) == len(kinds) >= 60
