"""The LiteText student next to the SAM3 teacher on the same image and prompts.

    python examples/litetext_vs_sam3.py examples/images/astronaut.jpg --prompt person --prompt flag
    (SAM3 is gated on the hub: accept its licence and log in first. Offline: --student tiny-random
    --teacher tiny-random-sam3.)
"""

from __future__ import annotations

import argparse

import numpy as np

import litetext


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image")
    parser.add_argument("--prompt", action="append", required=True)
    parser.add_argument("--student", default="s0-16")
    parser.add_argument("--teacher", default="sam3")
    args = parser.parse_args()

    results = {}
    for name in (args.student, args.teacher):
        engine = litetext.load(name)
        result = engine.segment(args.image, args.prompt)
        results[name] = result
        print(f"{name:>18}: text encoder {engine.info.text_encoder_params_m:g}M params, "
              f"{len(result)} instances, text {result.timings.encode_text_ms:.0f} ms, "
              f"total {result.timings.total_ms:.0f} ms")
    for prompt in args.prompt:
        student = results[args.student].union_mask(prompt)
        teacher = results[args.teacher].union_mask(prompt)
        union = np.logical_or(student, teacher).sum()
        iou = np.logical_and(student, teacher).sum() / union if union else 1.0
        print(f"{prompt!r}: student vs teacher mask IoU {iou:.3f}")


if __name__ == "__main__":
    main()
