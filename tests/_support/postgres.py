"""A throwaway PostgreSQL server on loopback (tools/ensure-postgresql.sh installs Debian's binaries).

initdb refuses to run as root, so under root the server runs as the ``postgres`` user (which Debian's
package creates) in a temporary folder that user owns; the folder is outside pytest's tmp_path because
pytest's base temporary folder is private to the user running the tests.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def find_bin() -> Path | None:
    """The folder holding initdb and pg_ctl, or None."""
    for cand in [shutil.which("initdb")] + sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True):
        if cand and os.access(cand, os.X_OK):
            d = Path(os.path.realpath(cand)).parent
            if (d / "pg_ctl").is_file():
                return d
    return None


def ensure_bin() -> Path | None:
    """``find_bin()``, installing Debian's postgresql package first when it is missing (root or sudo)."""
    d = find_bin()
    if d is None:
        subprocess.run(["sh", str(ROOT / "tools" / "ensure-postgresql.sh")], check=False)
        d = find_bin()
    return d


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def postgres_server(bindir: Path):
    """Start a server on 127.0.0.1 (trust authentication, user ``edgeport``); yield its SQLAlchemy URL."""
    as_root = os.geteuid() == 0
    work = Path(tempfile.mkdtemp(prefix="edgeport-pg-"))
    data, log = work / "data", work / "server.log"
    if as_root:
        import pwd

        pw = pwd.getpwnam("postgres")
        os.chown(work, pw.pw_uid, pw.pw_gid)

    def run(*cmd: str, check: bool = True):
        full = [str(bindir / cmd[0]), *cmd[1:]]
        if as_root:
            full = ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(f"'{c}'" for c in full)]
        return subprocess.run(full, check=check, capture_output=True, text=True, timeout=120)

    port = _free_port()
    try:
        run("initdb", "-D", str(data), "-A", "trust", "-U", "edgeport", "--no-sync")
        run("pg_ctl", "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o",
            f"-p {port} -k {work} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
        url = f"postgresql+psycopg2://edgeport@127.0.0.1:{port}/postgres"
        _wait_ready(url)
        yield url
    finally:
        if (data / "postmaster.pid").exists():
            run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(work, ignore_errors=True)


def _wait_ready(url: str, timeout: float = 30.0) -> None:
    import sqlalchemy

    t0 = time.time()
    while True:
        try:
            with sqlalchemy.create_engine(url).connect():
                return
        except sqlalchemy.exc.OperationalError:
            if time.time() - t0 > timeout:
                raise
            time.sleep(0.3)
