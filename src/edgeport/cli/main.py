"""``edgeport`` entry point: argparse subcommands; heavy imports happen inside each ``run``."""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import os
import sys
import time
import traceback
from pathlib import Path

from edgeport import __version__
from edgeport.cli.args import CommandParser, HelpFormatter
from edgeport.errors import EdgeportError

#: Subcommand name -> module under edgeport.cli. Each module is light to import.
COMMANDS = {
    "export": "edgeport.cli.export",
    "validate": "edgeport.cli.validate",
    "demo": "edgeport.cli.demo",
    "train": "edgeport.cli.train",
    "evaluate": "edgeport.cli.evaluate",
    "predict": "edgeport.cli.predict",
    "tune": "edgeport.cli.tune",
    "ood": "edgeport.cli.ood",
    "bench": "edgeport.cli.bench",
}
#: (command, flag) -> the command that runs instead when the flag is set (the seed's ``train --tune`` is ``tune``)
HANDOFFS = {("train", "tune"): "tune"}


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser(
        prog="edgeport",
        description="Turn a trained model into deployable artifacts that provably behave like it.",
    )
    parser.add_argument("--version", action="version", version=f"edgeport {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an unexpected error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=CommandParser)
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=module.HELP, description=module.HELP,
                           formatter_class=HelpFormatter)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the traceback of an unexpected error")
        module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    # edgeport's own messages at INFO; third-party libraries (converters are chatty) only from WARNING
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s" if args.verbose else "%(message)s",
    )
    logging.getLogger("edgeport").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    module = args._module
    for (command, flag), target in HANDOFFS.items():
        if args.command == command and getattr(args, flag, False):
            module = importlib.import_module(COMMANDS[target])
    try:
        return int(module.run(args))
    except EdgeportError as e:
        print(f"edgeport {args.command}: error: {' '.join(str(e).split())}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"edgeport {args.command}: interrupted; outputs not yet moved into place were discarded",
              file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - the top-level handler: one line, the traceback in the log
        return report_unexpected(args.command, e, debug=args.debug)


def log_dir() -> Path:
    """Where tracebacks of unexpected errors go: $EDGEPORT_LOG_DIR, else ~/.cache/edgeport/logs."""
    env = os.environ.get("EDGEPORT_LOG_DIR")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edgeport" / "logs"


def report_unexpected(command: str, e: BaseException, *, debug: bool) -> int:
    """One line naming what failed (the file, for an OSError) and the log holding the traceback; exit 1."""
    tb = "".join(traceback.format_exception(type(e), e, e.__traceback__))
    log_file: Path | None = log_dir() / f"edgeport-{command}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{time.monotonic_ns() % 10**6:06d}.log"
    try:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        log_file.write_text(f"edgeport {__version__} {command}: {' '.join(sys.argv)}\n{tb}", encoding="utf-8")
    except OSError:
        log_file = None
    if isinstance(e, OSError):
        what = f"could not {'write' if e.errno in _WRITE_ERRNOS else 'read or write'} " \
               f"{e.filename or 'a file'} ({e.strerror or type(e).__name__})"
    else:
        frame = traceback.extract_tb(e.__traceback__)[-1] if e.__traceback__ else None
        where = f" in {Path(frame.filename).name}:{frame.lineno}" if frame else ""
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        what = f"unexpected {type(e).__name__}{where}: {first}"[:300]
    if debug:
        print(tb, file=sys.stderr, end="")
    where_log = f"the traceback is in {log_file}" if log_file else "the log could not be written"
    print(f"edgeport {command}: error: {what}; {where_log} (--debug shows it)", file=sys.stderr)
    return 1


_WRITE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT, errno.EPERM}


if __name__ == "__main__":
    sys.exit(main())
