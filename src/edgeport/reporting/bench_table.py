"""The bench table (``bench.json`` -> header and rows, the printed text), shared by ``edgeport bench`` and the
folder report; it reads the JSON form only, so reporting needs nothing of the benchmark code."""

from __future__ import annotations

from edgeport.reporting.table import columns, human_size

BENCH_JSON = "bench.json"
BENCH_PLOT = "bench.png"


def _ms(lat: dict, key: str, stat: str) -> str:
    v = (lat.get(key) or {}).get(stat)
    return "-" if v is None else f"{v:.3f}"


def _num(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def bench_rows(result) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """(header, rows) of the bench table, from a result or its ``to_dict()`` (the HTML report uses the same)."""
    d = result.to_dict() if hasattr(result, "to_dict") else result
    b = d["settings"]["batch"]
    header = ("artifact", "runtime", "size", "b1 p50 ms", "b1 p90 ms", f"b{b} p50 ms", f"b{b} p90 ms", "ms/row",
              "max diff", "cosine", "top-1", "task", "result")
    rows = []
    for a in d["artifacts"]:
        h, lat, task = a.get("headline") or {}, a.get("latency") or {}, a.get("task") or {}
        if a.get("error"):
            result_text = "ERROR"
        elif a["role"] == "reference":
            result_text = "reference"
        else:
            result_text = "PASS" if (a.get("agreement") or {}).get("passed") else "FAIL"
        batched = lat.get("batched") or {}
        rows.append((
            a["name"], a["runtime"], human_size(a.get("size_bytes")),
            _ms(lat, "batch_1", "p50_ms"), _ms(lat, "batch_1", "p90_ms"),
            _ms(lat, "batched", "p50_ms") + ("" if batched.get("batch", b) == b else f" @{batched['batch']}"),
            _ms(lat, "batched", "p90_ms"), _num(batched.get("per_row_ms"), ".4f"),
            _num(h.get("max_abs_diff"), ".2e"), _num(h.get("cosine_mean"), ".6f"), _num(h.get("top1_agreement"), ".3f"),
            _task_text(task, a["role"]),
            result_text,
        ))
    return header, rows


def _task_text(task: dict | None, role: str) -> str:
    if not task:
        return "n/a"
    text = f"{task['metric']} {_num(task.get('value'), '.4f')}"
    drop = task.get("drop_points")
    return text if role == "reference" or drop is None else f"{text} (drop {drop:.2f} pt)"


def format_bench_table(result) -> str:
    d = result.to_dict() if hasattr(result, "to_dict") else result
    s, inp = d["settings"], d["inputs"]
    header, rows = bench_rows(d)
    out = [(f"bench of {d['folder']} ({d['kind']}): {inp['rows']} input rows from {inp['source']}; reference: "
            f"{d['reference']['source']} ({d['reference']['kind']})"),
           (f"latency: wall-clock ms per call, {s['threads']} runtime thread(s), p50/p90 of {s['repeats']} runs "
            f"after {s['warmup']} warm-up runs, on {s['cpu_count']} CPU core(s)"), *columns(header, rows)]
    for a in d["artifacts"]:
        if a.get("error"):
            out.append(f"  {a['name']}: {a['error']}")
        elif a["role"] == "artifact" and not (a.get("agreement") or {}).get("passed"):
            out.append(f"  {a['name']}: " + "; ".join(a["agreement"]["failures"]))
        out += [f"  {a['name']}: {n}" for n in a.get("notes") or ()]
    out += [f"  {s_['name']}: not benched ({s_['reason']})" for s_ in d.get("skipped") or ()]
    if not any(a.get("task") for a in d["artifacts"]):
        out.append("  task metric: n/a (no labels: pass --reference-inputs FILE.npz holding a 'labels' array)")
    return "\n".join(out)
