"""`python -m litetext_label_studio [--port 9090]`: the same as `litetext label-studio`."""

from __future__ import annotations

import argparse
import sys

from .cli import register


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m litetext_label_studio")
    commands = parser.add_subparsers()
    register(commands)
    args = parser.parse_args(["label-studio", *(sys.argv[1:] if argv is None else argv)])
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
