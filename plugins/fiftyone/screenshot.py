"""Capture docs/images/fiftyone_app.png: the App showing the operator's masks (headless Chromium).

    FIFTYONE_PLUGINS_DIR=plugins/fiftyone python -m litetext_fiftyone.screenshot --model tiny-random \
        --out docs/images/fiftyone_app.png

Needs `pip install playwright` and a system Chromium (Debian: `apt-get install chromium`); never runs
`playwright install`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "images"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-random")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--port", type=int, default=5151)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--out", default="docs/images/fiftyone_app.png")
    args = parser.parse_args(argv)

    from playwright.sync_api import sync_playwright

    import fiftyone as fo
    import fiftyone.operators as foo
    from litetext_fiftyone import OPERATOR_URI

    dataset = fo.Dataset("litetext-demo", overwrite=True)
    dataset.add_samples([fo.Sample(filepath=str(EXAMPLES / f"{n}.jpg")) for n in ("cat", "coffee", "astronaut",
                                                                                     "rocket")])
    params = {"prompts": ["cat", "coffee cup", "astronaut", "rocket"], "model": args.model, "device": args.device,
              "label_field": "litetext", "threshold": 0.62}
    execution = foo.execute_operator(OPERATOR_URI, dataset=dataset, params=params)
    sent = execution.executor.to_json()["requests"]
    shown = [r["params"]["results"] for r in sent if r["operator_uri"] == "show_output"]
    print(shown[-1]["message"])  # an immediate run shows its result in the App (show_output)
    session = fo.launch_app(dataset, address="127.0.0.1", port=args.port, remote=True, auto=False)
    time.sleep(5)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 850})
        page.goto(f"http://127.0.0.1:{args.port}/datasets/litetext-demo", timeout=120_000)
        time.sleep(25)  # the grid renders its thumbnails lazily
        dismiss = page.get_by_text("Dismiss")
        if dismiss.count():
            dismiss.first.click()
            time.sleep(2)
        page.mouse.click(750, 250)  # open the second sample (coffee) in the modal
        time.sleep(15)
        page.screenshot(path=args.out)
        browser.close()
    del session
    dataset.delete()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
