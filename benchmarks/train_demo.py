"""Time the audio part of the demo and record DS-CNN vs baseline ROC-AUC.

Usage: .venv/bin/python benchmarks/train_demo.py   -> benchmarks/results/train_demo.json
"""

from __future__ import annotations

import json
import logging
import os
import platform
import sys
import tempfile
from pathlib import Path

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from edgeport.training.demo import train_demo

    with tempfile.TemporaryDirectory() as tmp:
        s = train_demo(Path(tmp), seed=0)
    out = {k: v for k, v in s.items() if not k.endswith(("_path", "_dir"))}
    out.update(command="python benchmarks/train_demo.py", cpus=os.cpu_count(), machine=platform.machine(),
               python=sys.version.split()[0])
    dest = Path(__file__).parent / "results" / "train_demo.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
