"""Many prompts on one image: the image is encoded once, every later prompt reuses its features.

    python examples/many_prompts_cached.py examples/images/cat.jpg --model s0-16
"""

from __future__ import annotations

import argparse

import litetext


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image")
    parser.add_argument("--model", default="s0-16", help="alias, hub id or local dir ('tiny-random' runs offline)")
    args = parser.parse_args()

    engine = litetext.load(args.model)
    # All prompts in one call: one image encoding, one decode over all of them.
    result = engine.segment(args.image, ["cat", "ear", "eye", "whiskers"])
    print(f"4 prompts at once: {len(result)} instances, {result.timings.total_ms:.0f} ms")
    # Asking again about the same image skips the vision encoder (the shared image cache).
    for prompt in ["nose", "fur", "cat"]:
        again = engine.segment(args.image, prompt)
        t = again.timings
        print(f"{prompt!r}: {len(again)} instances; image cache hit={t.image_cache_hit}, "
              f"encode {t.encode_image_ms:.0f} ms, decode {t.decode_ms:.0f} ms")
    print("image cache:", engine.image_cache.stats())
    print("text cache:", engine.text_cache.stats())
    result.overlay(litetext.load_image(args.image)).save("overlay.png")
    print("overlay -> overlay.png")


if __name__ == "__main__":
    main()
