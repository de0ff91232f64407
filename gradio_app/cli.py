"""`litetext app`: launch the Gradio app locally (registered through the `litetext.commands` entry points)."""

from __future__ import annotations

import argparse
import sys

from litetext import LitetextError
from litetext.cli.common import add_model_arguments, require_extra, warn_if_random


def register(subparsers) -> None:
    """Add the `app` subcommand to litetext's command line."""
    parser = subparsers.add_parser("app", help="launch the Gradio app (a Hugging Face Space) in the browser")
    add_model_arguments(parser)
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on; 0.0.0.0 serves the whole network (default: %(default)s)")
    parser.add_argument("--port", type=int, default=7860, help="port to listen on (default: %(default)s)")
    parser.add_argument("--max-pixels", type=int, default=40_000_000,
                        help="largest image accepted, in pixels (default: %(default)s)")
    parser.add_argument("--max-video-frames", type=int, default=300,
                        help="frames tracked per video at most; longer videos are cut (default: %(default)s)")
    parser.add_argument("--no-preload", action="store_true", help="load the model on the first request instead")
    parser.add_argument("--share", action="store_true", help="also create a public gradio.live link")
    parser.set_defaults(run=run_app)


def run_app(args: argparse.Namespace) -> int:
    """Build the app for the chosen model and serve it until interrupted."""
    require_extra("gradio", "gradio")
    from .app import AppConfig, build_demo, launch, preload

    warn_if_random(args.model)
    config = AppConfig(model=args.model, device=args.device, dtype=args.dtype, max_pixels=args.max_pixels,
                       max_video_frames=args.max_video_frames)
    if not args.no_preload:
        preload(config)
    launch(build_demo(config), server_name=args.host, server_port=args.port, share=args.share)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run `app` on its own (`python -m litetext_gradio.cli --model tiny-random`), without the entry point."""
    parser = argparse.ArgumentParser(prog="litetext")
    register(parser.add_subparsers())
    args = parser.parse_args(["app", *(sys.argv[1:] if argv is None else argv)])
    try:
        return args.run(args)
    except LitetextError as error:  # as `litetext app` reports it
        print(f"litetext: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
