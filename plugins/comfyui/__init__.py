"""litetext for ComfyUI: SAM3-LiteText text-prompted segmentation nodes.

ComfyUI loads this directory as a custom node pack and calls `comfy_entrypoint` (V3 node API). The nodes
module imports `comfy_api`, so it is imported only then: the package itself stays importable outside
ComfyUI (for `litetext comfyui install`). No downloads, no pip installs at import time.
"""

from __future__ import annotations


async def comfy_entrypoint():
    """The V3 entry point ComfyUI calls: returns the extension listing this pack's nodes."""
    from .nodes import LiteTextExtension

    return LiteTextExtension()


__all__ = ["comfy_entrypoint"]
