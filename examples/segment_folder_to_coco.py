"""Segment every image in a folder with a few prompts and write one COCO JSON file (RLE masks).

    python examples/segment_folder_to_coco.py examples/images --prompt cat --prompt "coffee cup" \
        --model s0-16 --out coco.json
"""

from __future__ import annotations

import argparse
import json

import litetext


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--prompt", action="append", required=True)
    parser.add_argument("--model", default="s0-16", help="alias, hub id or local dir ('tiny-random' runs offline)")
    parser.add_argument("--out", default="coco.json")
    args = parser.parse_args()

    engine = litetext.load(args.model)
    paths = litetext.list_images([args.folder])
    coco = litetext.CocoBuilder(args.prompt)
    for item in engine.segment_batch([str(p) for p in paths], args.prompt, batch_size=4, progress=True):
        if item.ok:
            coco.add(paths[item.index].name, item.result)
        else:
            print(f"skipped {paths[item.index]}: {item.error}")
    with open(args.out, "w") as file:
        json.dump(coco.to_dict(), file)
    print(f"{coco.annotation_count} instances in {len(coco.images)} images -> {args.out}")


if __name__ == "__main__":
    main()
