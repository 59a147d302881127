"""The ``graft`` command line: a thin shell over the Python API.

Each sub-command lives in its own module under :mod:`graft.commands` and exposes
``register(subparsers)``, which adds its parser and sets ``func(args) -> int``. This file only
discovers them, parses, and turns a :class:`graft.errors.GraftError` into one clear message.

Example:
    $ graft models 'efficientnet*' --available
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import traceback
from collections.abc import Sequence

import graft.ensembling.best  # noqa: F401 - installs the runner of fit --preset best's ensemble
import graft.report  # noqa: F401 - installs the report.html writer that fit and evaluate end with
from graft import __version__
from graft.cli_checks import check_args, path_error_message, printable_message
from graft.errors import GraftError
from graft.log import configure


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with every command module found under :mod:`graft.commands`."""
    parser = argparse.ArgumentParser(
        prog="graft",
        description="Transfer learning with pretrained vision models.",
    )
    parser.add_argument("--version", action="version", version=f"graft {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)"
    )
    parser.add_argument(
        "-q", "--quiet", action=argparse.BooleanOptionalAction, default=False, help="errors only"
    )
    parser.add_argument(
        "--traceback",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="show the full traceback on errors",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _command_modules():
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``graft`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure(args.verbose, args.quiet)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        check_args(args)
        return _run(args)
    except GraftError as e:
        if args.traceback:
            traceback.print_exc()
        print(f"graft {args.command}: error: {printable_message(str(e))}", file=sys.stderr)
        return 2
    except OSError as e:  # a path the user named: permission, not a folder, read-only disk
        message = path_error_message(e)
        if message is None:
            raise
        if args.traceback:
            traceback.print_exc()
        print(f"graft {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"graft {args.command}: interrupted; finished outputs are kept (use --resume where offered).",
            file=sys.stderr,
        )
        return 130


def _run(args: argparse.Namespace) -> int:
    """Run the command; with ``--json`` anything it prints besides the result goes to stderr."""
    if not getattr(args, "json", False):
        return int(args.func(args) or 0)
    args.stdout = sys.stdout  # graft.commands._common.emit writes the one JSON document here
    with contextlib.redirect_stdout(sys.stderr):
        return int(args.func(args) or 0)


def _command_modules() -> list:
    from graft.commands import command_modules

    return list(command_modules().values())


if __name__ == "__main__":
    sys.exit(main())
