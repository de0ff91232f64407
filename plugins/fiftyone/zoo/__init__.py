"""FiftyOne remote model zoo source for litetext (SAM3-LiteText text-prompted segmentation).

FiftyOne imports this file from its model zoo directory and calls `download_model` / `load_model`; both
live in the installed `litetext_fiftyone` package (``pip install "litetext[fiftyone]"``).
"""

from litetext_fiftyone.model import download_model, load_model

__all__ = ["download_model", "load_model"]
