"""Print the reliability suite's table of cases (tests/reliability/cases.py) as Markdown for
docs/reliability.md: ``python tools/reliability_table.py > table.md``."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.reliability.cases import CASES, KINDS, SIGNAL_CASES


def _left(c) -> str:
    if c.what_is_left:
        return c.what_is_left
    return "every file as before" if c.leaves == "unchanged" else ", ".join(sorted(c.outputs))


def _argv(argv) -> str:
    return " ".join(a.replace("{tmp}/", "").replace("{", "").replace("}", "") for a in argv if a not in (
        "--sample-rate", "16000", "--chunk-duration", "0.5", "--spec-width", "32", "--fft-length", "256",
        "--num-mels", "16", "--alpha", "0.25", "--embeddings-size", "16", "--batch-size", "8", "--num-workers", "0",
        "--no-progress", "--max-chunks-per-file", "2", "--dropout", "0.1", "--no-se", "--no-inverted-residual"))


def main() -> None:
    counts = Counter([c.kind for c in CASES] + [c.kind for c in SIGNAL_CASES])
    print("| kind | cases |\n|---|---|")
    for k in KINDS:
        print(f"| {k} | {counts[k]} |")
    print(f"| **all** | **{sum(counts.values())}** |\n")
    print("| case | kind | command | exit | the one line says | left behind |\n|---|---|---|---|---|---|")
    for c in CASES:
        msg = c.message.replace("\\", "").replace("|", "/") or "(table and results; no error line)"
        print(f"| {c.id} | {c.kind} | `{_argv(c.argv)}` | {c.code} | `{msg}` | {_left(c)} |")
    for c in SIGNAL_CASES:
        print(f"| {c.id} | {c.kind} | `{_argv(c.argv)}` + {c.signal} at {c.point} | "
              f"{'130' if c.code == 130 else 'killed'} | {'interrupted' if c.signal == 'SIGINT' else '-'} | "
              f"{_left(c)} |")


if __name__ == "__main__":
    main()
