"""The one-line-per-artifact table that export, validate and bench print."""

from __future__ import annotations

from edgeport.validation import Gate

_GATE_LABELS = {
    "max_abs_diff": "max<=",
    "min_cosine": "cos>=",
    "min_pearson": "r>=",
    "min_centred_pearson": "rc>=",
    "min_top1": "top1>=",
}


def gate_text(gate: Gate) -> str:
    parts = [f"{label}{getattr(gate, key):g}" for key, label in _GATE_LABELS.items() if getattr(gate, key) is not None]
    return ",".join(parts) or "-"


def human_size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def _num(v: float | None, fmt: str = ".2e") -> str:
    return "-" if v is None else format(v, fmt)


def batch_text(notes: dict | None) -> str | None:
    """What a user may do with the batch axis of an artifact, or None when the exporter said nothing."""
    notes = notes or {}
    if notes.get("dynamic_batch") is True:
        return "dynamic batch (-1): any batch size"
    b = notes.get("fixed_batch")
    if notes.get("dynamic_batch") is False and b and not str(notes.get("format")).startswith("tflite"):
        return f"FIXED batch {b} (the source's): feed {b} row(s) per run (edgeport's runners do)"
    if notes.get("dynamic_batch") is False and b:
        return (f"FIXED batch {b}: a non-strict resize_tensor_input returns {b} row(s) for any n; resize with "
                f"strict=True (refused) and feed {b} row(s) at a time (docs/export.md)")
    return None


def columns(header: tuple[str, ...], rows: list[tuple]) -> list[str]:
    """Left-aligned columns two spaces apart: the header, a dashed rule, one line per row."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(r) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()

    return [line(header), line(tuple("-" * w for w in widths)), *map(line, rows)]


def format_table(artifacts) -> str:
    """``artifacts``: ArtifactResult-like objects (format, size_bytes, comparison, status, error)."""
    header = ("format", "size", "max diff", "mean diff", "cosine", "top-1", "gate", "result")
    rows = []
    for a in artifacts:
        cmp = a.comparison
        h = cmp.headline() if cmp is not None else {}
        result = {"passed": "PASS", "failed": "FAIL"}.get(a.status, "ERROR")
        rows.append((
            a.format,
            human_size(a.size_bytes),
            _num(h.get("max_abs_diff")),
            _num(h.get("mean_abs_diff")),
            _num(h.get("cosine_mean"), ".6f"),
            _num(h.get("top1_agreement"), ".3f"),
            gate_text(cmp.gate) if cmp is not None else "-",
            result,
        ))
    out = columns(header, rows)
    for a in artifacts:
        if a.status == "error":
            out.append(f"  {a.format}: {a.error}")
        elif a.status == "failed" and a.comparison is not None:
            out.append(f"  {a.format}: " + "; ".join(a.comparison.failures))
    for a in artifacts:
        note = batch_text(getattr(a, "notes", None))
        if note and note.startswith("FIXED"):
            out.append(f"  {a.format}: {note}")
    not_judged: dict[str, list[str]] = {}
    for a in artifacts:
        for note in a.comparison.not_judged if a.comparison is not None else ():
            not_judged.setdefault(note, []).append(a.format)
    for note, fmts in not_judged.items():
        out.append(f"  not judged ({', '.join(fmts)}): {note}")
    return "\n".join(out)
