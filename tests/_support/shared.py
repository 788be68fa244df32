"""Test helpers shared by several conftest files."""

from __future__ import annotations

import contextlib
import os
import time


@contextlib.contextmanager
def shared_dir(tmp_path_factory, name: str, timeout: float = 900.0):
    """A directory shared by all xdist workers of this run, built once under a lock.

    Yields (directory, already_built). pytest-xdist's ``xdist_group`` did not keep tests on one worker
    with pytest 9.2 / xdist 3.8, so session fixtures would otherwise be rebuilt on every worker.
    """
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    d, lock, done = base / name, base / f"{name}.lock", base / f"{name}.done"
    t0 = time.time()
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            break
        except FileExistsError:
            if time.time() - t0 > timeout:
                raise TimeoutError(f"waited {timeout:.0f} s for {lock}") from None
            time.sleep(0.5)
    try:
        d.mkdir(exist_ok=True)
        yield d, done.exists()
        done.touch()
    finally:
        os.close(fd)
        os.unlink(lock)
