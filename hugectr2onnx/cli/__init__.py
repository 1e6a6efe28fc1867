"""Command line: a thin layer over the Python API, one module per command.

Each command module defines ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``;
adding a command means adding its module and one line to ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

from .. import __version__
from ..errors import ConversionError
from .common import cli_message

INTERNAL_ERROR = 70  # EX_SOFTWARE; input errors exit with ConversionError.exit_code (2-4)
BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports `yes | head -1`

COMMANDS = {  # command name -> module of this package
    "convert": "convert",
    "verify": "verify",
    "optimize": "optimize",
    "predict": "predict",
    "inspect": "inspect",
    "record": "record",
    "to-torch": "to_torch",
    "from-torch": "from_torch",
    "to-tf": "to_tf",
    "hf": "hf",
    "redis": "redis",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hugectr2onnx",
                                     description="Convert NVIDIA HugeCTR models to ONNX (and to PyTorch "
                                     "and TensorFlow); verify, optimize and score them.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"{__name__}.{module_name}")
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        _add_debug(p)
        p.set_defaults(_run=module.run)
    return parser


def _add_debug(p: argparse.ArgumentParser) -> None:
    """``--debug`` after the command too, and after nested ones (``hf export``)."""
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="show tracebacks on errors")
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for nested in action.choices.values():
                _add_debug(nested)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args._run(args)
    except ConversionError as e:
        if args.debug:
            traceback.print_exc()
        print(f"hugectr2onnx: error: {_one_line(cli_message(e))}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("hugectr2onnx: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of stdout left (`| head`): stop quietly
        _detach_stdout()
        return BROKEN_PIPE
    except Exception as e:  # not bad input but a bug here: say so, distinctly
        if args.debug:
            traceback.print_exc()
        print(f"hugectr2onnx: internal error: {type(e).__name__}: {_one_line(e)} (a bug in "
              f"hugectr2onnx: please report it with the output of --debug)", file=sys.stderr)
        return INTERNAL_ERROR


def _detach_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's last flush of what is still buffered
    does not fail again (and print "Exception ignored ...") on the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout replaced by an object without a descriptor
        pass


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())


if __name__ == "__main__":
    sys.exit(main())
