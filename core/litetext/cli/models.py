"""`litetext models`: the registry of checkpoints, `models assemble` and `models convert`."""

from __future__ import annotations

import argparse
import json
import sys

from ..models.registry import list_models


def register(commands) -> None:
    """Add the command to `litetext`'s subparsers."""
    models = commands.add_parser("models", help="list known checkpoints and their aliases; assemble one")
    models.add_argument("--json", action="store_true", help="print JSON instead of a table")
    models.set_defaults(run=run_models)
    model_actions = models.add_subparsers(title="actions", metavar="ACTION")
    assemble = model_actions.add_parser(
        "assemble", help="compose a LiteText detector with SAM3's tracker into one checkpoint (sam3_video layout)")
    assemble.add_argument("detector", help="the detector: alias, hub id or directory (e.g. s0-16)")
    assemble.add_argument("--tracker", required=True,
                          help="a checkpoint holding SAM3's tracker: alias, hub id or directory (e.g. sam3)")
    assemble.add_argument("-o", "--out", required=True, help="the directory to write")
    assemble.add_argument("--force", action="store_true", help="write into a non-empty directory")
    assemble.set_defaults(run=run_assemble)
    convert = model_actions.add_parser(
        "convert", help="convert an original SAM3-LiteText / EfficientSAM3 (.pt) checkpoint into a folder litetext "
                        "and transformers load")
    convert.add_argument("checkpoint", metavar="CKPT", help="the original checkpoint (.pt)")
    convert.add_argument("-o", "--out", required=True, help="the directory to write")
    convert.add_argument("--tokenizer", metavar="DIR",
                         help="a folder holding CLIP's tokenizer files (default: openai/clip-vit-base-patch32 from "
                              "the hub)")
    convert.add_argument("--force", action="store_true", help="write into a non-empty directory")
    convert.set_defaults(run=run_convert)


def run_models(args: argparse.Namespace) -> int:
    """`litetext models`: the known checkpoints as a table or JSON."""
    specs = list_models()
    if args.json:
        from dataclasses import asdict

        print(json.dumps([asdict(s) for s in specs], indent=2))
        return 0
    from ..models.checkpoints import is_converted

    rows = [("alias", "checkpoint", "image encoder", "params", "text encoder", "params", "ctx", "tracker", "status")]
    for s in specs:
        status = "verified" if s.verified else "unverified"
        if s.repo_id is None and not s.alias.startswith("tiny-random"):
            status = "not published"
        if s.original_file is not None:
            status += ", converted" if is_converted(s.alias) else ", converts on first use"
        image_params = "-" if s.image_encoder_params_m is None else f"{s.image_encoder_params_m:g}M"
        rows.append((s.alias, s.repo_id or ("(built locally)" if s.alias.startswith("tiny") else "-"),
                     s.image_encoder, image_params, s.text_encoder, f"{s.text_encoder_params_m:g}M",
                     str(s.context_length), "yes" if s.has_tracker else "-", status))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    print("\nAny hub id (owner/name) or local save_pretrained directory works too. Clicks need a tracker: "
          "`litetext models assemble s0-16 --tracker sam3 --out DIR` composes one.")
    return 0


def run_assemble(args: argparse.Namespace) -> int:
    """`litetext models assemble`: a detector composed with SAM3's tracker, written as one checkpoint."""
    from ..models.building import assemble

    composition = assemble(args.detector, args.tracker, args.out, overwrite=args.force)
    same = ("identical ViT weights" if composition.vit_max_difference == 0.0 else
            f"ViT weights differ by up to {composition.vit_max_difference:.3g}")
    print(f"litetext: wrote {composition.path}: {args.detector} with the tracker of {args.tracker} "
          f"({composition.tensors} tensors, {same}); load it with litetext.load({str(composition.path)!r})",
          file=sys.stderr)
    return 0


def run_convert(args: argparse.Namespace) -> int:
    """`litetext models convert`: an original checkpoint as a transformers folder, with one summary line."""
    from ..models.convert import convert_checkpoint

    report = convert_checkpoint(args.checkpoint, args.out, tokenizer=args.tokenizer, overwrite=args.force)
    print(f"litetext: {report.summary()}; load it with litetext.load({report.out!r})", file=sys.stderr)
    return 0
