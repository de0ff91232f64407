"""litetext for ComfyUI: SAM3-LiteText text-prompted segmentation nodes.

ComfyUI calls `comfy_entrypoint` (V3 node API), through the repository's root __init__.py for a clone in
custom_nodes/, or on this directory linked there by `litetext comfyui install`. The nodes module imports
`comfy_api`, so it is imported only then: the package itself stays importable outside ComfyUI. No downloads, no
pip installs at import time.
"""

from __future__ import annotations


async def comfy_entrypoint():
    """The V3 entry point ComfyUI calls: returns the extension listing this pack's nodes."""
    from .nodes import LiteTextExtension

    return LiteTextExtension()


__all__ = ["comfy_entrypoint"]
