"""``edgeport`` entry point: argparse subcommands; heavy imports happen inside each ``run``."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from edgeport import __version__
from edgeport.errors import EdgeportError

#: Subcommand name -> module under edgeport.cli. Each module is light to import.
COMMANDS = {
    "export": "edgeport.cli.export",
    "demo": "edgeport.cli.demo",
    "train": "edgeport.cli.train",
    "evaluate": "edgeport.cli.evaluate",
    "predict": "edgeport.cli.predict",
    "ood": "edgeport.cli.ood",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgeport",
        description="Turn a trained model into deployable artifacts that provably behave like it.",
    )
    parser.add_argument("--version", action="version", version=f"edgeport {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=module.HELP, description=module.HELP,
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
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
    try:
        return int(args._module.run(args))
    except EdgeportError as e:
        print(f"edgeport {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"edgeport {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
