"""The `litetext` command line: segment, models, info, and the commands adapters register.

Adapters add their own subcommands (`litetext app`, `litetext label-studio`, ...) through the entry-point
group `litetext.commands`: each entry is a function `register(subparsers)`. The core never imports them.

One module per command (`segment`, `track`, `models`, `info`, `bench`, `export`, `web`), `ray` for
`--engine ray`, and `common`: the helpers adapters' commands use too (a public module).
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import entry_points

from ..errors import LitetextError
from ..version import __version__
from . import bench, export, info, models, segment, track, web

#: The entry-point group adapters register their commands in.
COMMAND_GROUP = "litetext.commands"


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except LitetextError as error:
        print(f"litetext: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    """The parser of every core command and every installed adapter's."""
    parser = argparse.ArgumentParser(prog="litetext", description="SAM3-LiteText text-prompted segmentation")
    parser.add_argument("--version", action="version", version=f"litetext {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    for command in (segment, track, models, info, bench, export, web):
        command.register(commands)
    for entry in entry_points(group=COMMAND_GROUP):
        try:
            entry.load()(commands)
        except Exception as error:  # a broken adapter must not take the core commands down with it
            print(f"litetext: adapter command {entry.name!r} is unavailable: {error}", file=sys.stderr)
    return parser
