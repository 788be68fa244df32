"""Argument groups shared by several subcommands, defined once."""

from __future__ import annotations

import argparse


class CommandParser(argparse.ArgumentParser):
    """The parser of ``edgeport`` and each subcommand.

    Bad arguments: one line naming the problem and where the options are listed, exit 2. Every multi-word
    option also answers to its underscore spelling (``--data_path_train`` for ``--data-path-train``, as the
    seed systems spelled them); ``--help`` lists the dashed one.
    """

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")

    def parse_known_args(self, args=None, namespace=None):
        import sys

        return super().parse_known_args(dashed_spellings(self, sys.argv[1:] if args is None else args), namespace)


def dashed_spellings(p: argparse.ArgumentParser, arg_strings) -> list[str]:
    """``--multi_word[=V]`` -> ``--multi-word[=V]`` where ``p`` has the dashed option and not the other one."""
    known = p._option_string_actions
    out = list(arg_strings)
    for i, a in enumerate(out):
        if a == "--":
            break
        flag, eq, value = a.partition("=")
        if flag.startswith("--") and "_" in flag and flag not in known:
            dashed = "--" + flag[2:].replace("_", "-")
            if dashed in known:
                out[i] = dashed + eq + value
    return out


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Defaults in ``--help``, except for on/off flags, whose name already says what they do."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.nargs == 0:
            return action.help
        return super()._get_help_string(action)


def add_source_arguments(p: argparse.ArgumentParser, default: str | None = None) -> None:
    g = p.add_argument_group("source model")
    g.add_argument("source", nargs="?", default=None, metavar="SOURCE",
                   help=f"model to export (checkpoint, .pt2); default {default}" if default else "model file")
    g.add_argument("--checkpoint", "--checkpoint-path", "--checkpoint_path", dest="checkpoint", default=None,
                   help="the source model, as an option instead of the positional SOURCE")
    g.add_argument("--factory", default=None, metavar="MODULE:FUNCTION",
                   help="builds your model from the checkpoint's model_config (keyword arguments); the module is "
                        "found on the current directory and PYTHONPATH")
    g.add_argument("--wrapper", default=None, metavar="NAME|MODULE:FUNCTION",
                   help="export wrapper: a family name (geo), 'none', or your function(model) -> nn.Module")
    g.add_argument("--trust-source", action="store_true",
                   help="allow loading checkpoints and archives that hold arbitrary Python objects (pickle)")
    g.add_argument("--input-shape", action="append", default=None, metavar="NAME=DIMS",
                   help="model input name and shape, N for the batch (e.g. input=N,3); repeat per input")
    g.add_argument("--output-names", nargs="+", default=None, metavar="NAME", help="names of the model outputs")
    g.add_argument("--input-range", action="append", default=None, metavar="NAME=LO,HI",
                   help="a model without a family's inputs (e.g. an .onnx) is validated on seeded random inputs: "
                        "draw NAME uniformly in [LO, HI] instead of N(0,1); repeat per input")
    g.add_argument("--name", default=None, help="base name of the artifacts (default: the family's or the file's)")


def resolve_source(args: argparse.Namespace, default: str | None) -> str:
    from edgeport.errors import ConfigError

    if args.source and args.checkpoint and args.source != args.checkpoint:
        raise ConfigError(f"two sources given ('{args.source}' and --checkpoint '{args.checkpoint}'); pass one")
    src = args.source or args.checkpoint or default
    if src is None:
        raise ConfigError("no model given: pass SOURCE or --checkpoint PATH")
    return src


def add_scoring_arguments(g) -> None:
    """How an audio classifier artifact is run and its scores read (evaluate, predict)."""
    g.add_argument("--trust-source", action="store_true",
                   help="allow a .keras file holding Python code (Lambda layers); only for files you trust")
    g.add_argument("--output-name", default=None, help="the output holding the class scores (multi-output models)")
    g.add_argument("--sigmoid", choices=tuple(SIGMOID_CHOICES), default="auto",
                   help="apply the sigmoid to the scores: auto = as the model config says (sigmoid_in_graph), else "
                        "when the output is named logits or any score falls outside [0, 1]")
    g.add_argument("--threads", type=int, default=None, help="runtime threads (TFLite, ONNX Runtime)")


#: --sigmoid -> apply_sigmoid (None: decided from the model config, the output name and the score range)
SIGMOID_CHOICES = {"auto": None, "yes": True, "no": False}


def config_from_args(args: argparse.Namespace):
    """argparse namespace -> TrainConfig (every option with the same name): `train` and `tune`."""
    from edgeport.training.config import TrainConfig

    return TrainConfig.from_dict(vars(args))
