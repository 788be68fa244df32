"""Runs ``edgeport ARGV`` and sends itself SIGNAL at a named POINT of the work (the reliability suite's
interrupt cases): ``python -m tests.reliability._driver POINT SIGNAL ARGV...``.

Each point wraps one edgeport function: the signal goes when that function is called (``before``) or
after it returned (``after``), so the process dies or is interrupted exactly there.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys

#: point -> (module, attribute (Class.method allowed), when, nth call)
POINTS = {
    "export.source_loaded": ("edgeport.export", "_export_one", "before", 1),
    "export.savedmodel": ("edgeport.exporters._onnx2tf_compat", "convert", "before", 1),  # ONNX -> TF step
    "export.validate": ("edgeport.export", "open_runner", "before", 1),
    "export.second_format": ("edgeport.export", "_export_one", "before", 2),
    "export.reports": ("edgeport.reporting.folder", "render_folder_report", "before", 1),
    "export.commit": ("edgeport.fileio", "move_into_place", "before", 2),
    "train.epoch1": ("edgeport.training.data", "ChunkStream.batches", "before", 1),
    "train.epoch2": ("edgeport.training.data", "ChunkStream.batches", "before", 2),
}


def arm(point: str, signum: int) -> None:
    module_name, attr, when, nth = POINTS[point]
    owner = importlib.import_module(module_name)
    cls_name, _, meth = attr.rpartition(".")
    if cls_name:
        owner = getattr(owner, cls_name)
    real = getattr(owner, meth or attr)
    calls = {"n": 0}

    def fire():
        os.kill(os.getpid(), signum)

    def wrapped(*a, **k):
        calls["n"] += 1
        hit = calls["n"] == nth
        if hit and when == "before":
            fire()
        out = real(*a, **k)
        if hit and when == "after":
            fire()
        return out

    setattr(owner, meth or attr, wrapped)


def main() -> int:
    point, sig, *argv = sys.argv[1:]
    # a user's Ctrl-C in a foreground run: Python leaves SIGINT ignored when the parent ignored it (a test run
    # started in the background by a non-interactive shell), and then the interrupt cases would not interrupt
    signal.signal(signal.SIGINT, signal.default_int_handler)
    arm(point, getattr(signal, sig))
    from edgeport.cli.main import main as edgeport_main

    return edgeport_main(argv)


if __name__ == "__main__":
    sys.exit(main())
