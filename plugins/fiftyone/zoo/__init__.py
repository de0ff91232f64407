"""FiftyOne remote model zoo source for litetext (SAM3-LiteText text-prompted segmentation).

FiftyOne imports this file from its model zoo directory and calls `download_model` / `load_model` (and, from
the "Apply zoo model" operator, `resolve_input` / `parse_parameters`); all four live in the installed
`litetext_fiftyone` package: ``pip install "litetext[fiftyone] @ git+https://github.com/litetext/litetext"``.
"""

try:
    from litetext_fiftyone.remote_zoo import download_model, load_model, parse_parameters, resolve_input
except ImportError as error:  # the source was registered without installing the package
    raise ImportError(
        "the litetext zoo models need the litetext package: "
        'pip install "litetext[fiftyone] @ git+https://github.com/litetext/litetext"'
    ) from error

__all__ = ["download_model", "load_model", "parse_parameters", "resolve_input"]
