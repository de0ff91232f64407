"""`litetext label-studio`: run the Label Studio ML backend."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    """Add the `label-studio` subcommand (entry point of the `litetext.commands` group)."""
    from litetext.cli.common import add_model_arguments

    parser = subparsers.add_parser(
        "label-studio", help="serve a Label Studio ML backend (text-prompted pre-annotation)",
        description="Serve Label Studio's ML backend protocol. Settings not given here come from the "
                    "environment (LABEL_STUDIO_URL, LABEL_STUDIO_API_KEY, BASIC_AUTH_USER/PASS, WORKERS, ...).",
    )
    add_model_arguments(parser)
    parser.set_defaults(model=None, device=None, dtype=None)  # the environment fills what the command omits
    parser.add_argument("--tracker", default=None,
                        help="compose SAM3's tracker with the model, for keypoint clicks and video tracking: alias, "
                             "hub id or directory, e.g. sam3 (env LITETEXT_TRACKER; default: the model's own)")
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default: %(default)s)")
    parser.add_argument("-p", "--port", type=int, default=9090, help="port (default: %(default)s)")
    parser.add_argument("--threshold", type=float, default=None, help="instance score threshold (default 0.5)")
    parser.add_argument("--mask-threshold", type=float, default=None, help="mask probability threshold (0.5)")
    parser.add_argument("--max-instances", type=int, default=None, help="keep at most this many per control")
    parser.add_argument("--max-video-frames", type=int, default=None,
                        help="track at most this many frames of each video (env LITETEXT_MAX_VIDEO_FRAMES)")
    parser.add_argument("--workers", type=int, default=None, help="server processes (env WORKERS, default 1)")
    parser.add_argument("--threads", type=int, default=None, help="predictions at once per process (THREADS)")
    parser.add_argument("--allowed-root", action="append", default=None,
                        help="directory the backend may read local files from (repeatable)")
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING... (env LOG_LEVEL)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from litetext.cli.common import require_extra, warn_if_random

    require_extra("labelstudio", "uvicorn", "starlette", "httpx")
    from .server import serve
    from .settings import BackendSettings

    settings = BackendSettings.from_env(
        model=args.model, tracker=args.tracker, device=args.device, dtype=args.dtype, threshold=args.threshold,
        mask_threshold=args.mask_threshold, max_instances=args.max_instances,
        max_video_frames=args.max_video_frames, workers=args.workers,
        threads=args.threads, log_level=args.log_level.upper() if args.log_level else None,
    )
    if args.allowed_root:
        settings = settings.replace(allowed_roots=settings.allowed_roots + tuple(args.allowed_root))
    warn_if_random(settings.model)
    serve(settings, host=args.host, port=args.port)
    return 0
