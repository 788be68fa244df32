"""The folder report: every table of a folder on one self-contained page, opened in headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from edgeport.cli.main import main
from edgeport.errors import ConfigError, SourceError
from edgeport.reporting.folder import (
    GENERATOR,
    render_folder_report,
    write_folder_report,
)

pytestmark = pytest.mark.slow


def _copy(folder, dst):
    return shutil.copytree(folder, dst, ignore=shutil.ignore_patterns("bench.*", "report.html"))


def _with_failure_and_per_layer(folder):
    """Mark the INT8 artifact failed with a reason and give it a per-layer table, as a later export would."""
    v = json.loads((folder / "validation.json").read_text())
    v["artifacts"]["onnx_int8"]["per_layer"] = [
        {"layer": "head/MatMul_quant", "sqnr_db": 11.5, "rmse_over_scale": 3.25},
        {"layer": "embed/MatMul_quant", "sqnr_db": 27.0, "rmse_over_scale": 0.5},
    ]
    (folder / "validation.json").write_text(json.dumps(v))
    m = json.loads((folder / "manifest.json").read_text())
    for a in m["artifacts"]:
        if a["format"] == "onnx_int8":
            a["status"] = "failed"
            a["validation"]["failures"] = ["probabilities.cosine_mean = 0.91 (gate >= 0.99)"]
    m["all_passed"] = False
    (folder / "manifest.json").write_text(json.dumps(m))
    return m


def test_page_holds_every_table_the_folder_has(bench_export, tmp_path):
    folder = _copy(bench_export, tmp_path / "exp")
    manifest = _with_failure_and_per_layer(folder)
    page = write_folder_report(folder).read_text()
    assert GENERATOR in page and "<h3>Export validation</h3>" in page and "<h3>Gates</h3>" in page
    for a in manifest["artifacts"]:
        assert f">{a['file']}<" in page and f">{a['format']}<" in page
        for c in a["validation"]["checks"]:
            assert f"{c['output']}.{c['metric']}" in page
    assert "probabilities.cosine_mean = 0.91 (gate &gt;= 0.99)" in page  # the failure with its reason
    assert "head/MatMul_quant" in page and "rmse_over_scale" in page and "11.5" in page  # per-layer table
    assert "<summary>manifest.json</summary>" in page and manifest["inputs"][0]["name"] in page
    assert "<h3>Bench</h3>" not in page  # no bench.json in this folder


def test_several_folders_one_page_and_bench_section(bench_export, tmp_path):
    a, b = _copy(bench_export, tmp_path / "a"), _copy(bench_export, tmp_path / "b")
    assert main(["bench", str(b), "--repeats", "2", "--batch", "4"]) == 0
    bench = json.loads((b / "bench.json").read_text())
    out = write_folder_report(a, b, out=tmp_path / "all.html")
    page = out.read_text()
    assert page.count('<h2 id="f') == 2 and 'href="#f1"' in page
    assert page.count("<h3>Bench</h3>") == 1 and page.count('src="data:image/png;base64,') == 1
    for row in bench["artifacts"]:
        assert f"{row['latency']['batch_1']['p50_ms']:.3f}" in page


def test_report_replaces_its_own_page_not_a_users_file(bench_export, tmp_path):
    folder = _copy(bench_export, tmp_path / "exp")
    write_folder_report(folder)
    write_folder_report(folder)  # its own page: replaced without force
    (folder / "report.html").write_text("<html>my notes</html>")
    with pytest.raises(ConfigError, match="pass --force"):
        write_folder_report(folder)
    assert (folder / "report.html").read_text() == "<html>my notes</html>"
    write_folder_report(folder, force=True)
    assert GENERATOR in (folder / "report.html").read_text()
    with pytest.raises(SourceError, match="no manifest.json or bench.json"):
        render_folder_report([tmp_path])


_CHROMIUM = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0"]


def _open(page, profile):
    """(DOM after load, console messages) of a page opened in headless Chromium."""
    run = subprocess.run([*_CHROMIUM, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120, check=True)
    return run.stdout, [ln for ln in run.stderr.splitlines() if ":CONSOLE" in ln]


@pytest.mark.skipif(shutil.which("chromium") is None and not os.environ.get("EDGEPORT_REQUIRE_CHROMIUM"),
                    reason="chromium is not installed (apt-get install chromium; make test installs it)")
def test_bench_report_renders_in_chromium(bench_export, tmp_path):
    assert shutil.which("chromium"), "make test needs chromium: tools/ensure-chromium.sh installs it"
    # the console check itself: a page with a script error is caught
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>console.error('boom'); missing_function();</script></body></html>")
    _, console = _open(bad, tmp_path / "profile")
    assert any("boom" in ln for ln in console) and any("missing_function" in ln for ln in console)

    folder = _copy(bench_export, tmp_path / "exp")
    assert main(["bench", str(folder), "--repeats", "2", "--batch", "4"]) == 0
    page = folder / "report.html"
    text = page.read_text()
    external = [u for u in re.findall(r'(?:src|href)="([^"]*)"', text) if not u.startswith(("data:", "#"))]
    assert not external, f"the page loads external assets: {external}"
    dom, console = _open(page, tmp_path / "profile")
    assert not console, console
    manifest = json.loads((folder / "manifest.json").read_text())
    for a in manifest["artifacts"]:
        assert a["file"] in dom and a["format"] in dom
    assert dom.count('src="data:image/png;base64,') == 1 and "<h3>Bench</h3>" in dom
    shot = tmp_path / "report.png"
    subprocess.run([*_CHROMIUM, f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
                    "--window-size=1400,3000", page.as_uri()], capture_output=True, timeout=120, check=True)
    assert shot.read_bytes()[:4] == b"\x89PNG" and shot.stat().st_size > 20_000


def test_export_writes_the_folder_page_under_its_own_name(bench_export):
    """export's report.html is the folder page, rendered in staging but naming the export folder."""
    page = (bench_export / "report.html").read_text()
    assert GENERATOR in page and "<h3>Export validation</h3>" in page
    assert f">{bench_export}<" in page and ".edgeport-tmp" not in page
    for a in json.loads((bench_export / "manifest.json").read_text())["artifacts"]:
        assert f">{a['file']}<" in page


def test_demo_writes_one_report_for_its_export_folders(bench_export, tmp_path):
    from edgeport.cli.demo import _report

    _copy(bench_export, tmp_path / "geo" / "exports")
    _copy(bench_export, tmp_path / "audio" / "exports")
    page = _report(("geo", "audio", "images"), tmp_path).read_text()  # no images folder: left out
    assert page.count('<h2 id="f') == 2 and str(tmp_path / "audio" / "exports") in page


def test_page_shows_the_calibration_diagnostics(bench_export, tmp_path):
    """A calibrated export's diagnostics (set size, per-input ranges, content hash, and the audio family's
    class histogram and near-silent share) are on the page, as the manifest holds them."""
    import numpy as np

    from edgeport.export import calibration_summary

    folder = _copy(bench_export, tmp_path / "exp")
    m = json.loads((folder / "manifest.json").read_text())
    feeds = {"input": np.random.default_rng(0).uniform(-1, 1, (40, 3)).astype(np.float32)}
    m["calibration"] = calibration_summary(feeds, source="family audio") | {
        "class_histogram": {"amerob": 14, "norcar": 13, "noise": 13}, "skipped_near_silent_share": 0.0952}
    (folder / "manifest.json").write_text(json.dumps(m))
    page = write_folder_report(folder).read_text()
    section = page[page.index("<h3>Calibration</h3>"):]
    for text in ("rows", ">40<", m["calibration"]["sha256"], "class_histogram", "amerob", "skipped_near_silent_share",
                 "0.0952", "range"):
        assert text in section, text
