"""Capture docs/images/label_studio.png: pre-annotations from the backend in Label Studio's labelling UI.

Needs a running Label Studio (URL, user, password, legacy API token) and a running backend, plus Debian's
`chromium` and Python `playwright` (never `playwright install`):

    python capture_screenshot.py --ls http://127.0.0.1:8080 --token TOKEN --user admin@example.com \
        --password PASS --backend http://127.0.0.1:9090 --out docs/images/label_studio.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import httpx
from label_studio_sdk import LabelStudio

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "images"
CONFIG = """
<View>
  <Image name="image" value="$image" zoom="true"/>
  <TextArea name="prompt" toName="image" editable="true" rows="1" placeholder="type a phrase to segment"/>
  <BrushLabels name="tag" toName="image" model_max_instances="3">
    <Label value="Cat" background="#e6194b"/>
    <Label value="Mug" prompt="coffee cup" background="#3cb44b"/>
  </BrushLabels>
  <RectangleLabels name="box" toName="image" model_max_instances="2" model_score_threshold="0.55">
    <Label value="Cat" background="#4363d8"/>
  </RectangleLabels>
</View>
"""
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("--ls", "--token", "--user", "--password", "--backend", "--out"):
        parser.add_argument(name, required=True)
    parser.add_argument("--image", default="cat.jpg")
    args = parser.parse_args()

    client = LabelStudio(base_url=args.ls, api_key=args.token)
    project = client.projects.create(title="litetext pre-annotations", label_config=CONFIG)
    files = [("file", (args.image, (EXAMPLES / args.image).read_bytes(), "image/jpeg"))]
    httpx.post(f"{args.ls}/api/projects/{project.id}/import", files=files,
               headers={"Authorization": f"Token {args.token}"}, timeout=60).raise_for_status()
    ml = client.ml.create(project=project.id, url=args.backend, title="litetext", is_interactive=True)
    client.actions.create(id="retrieve_tasks_predictions", project=project.id, selected_items={"all": True})
    [prediction] = client.predictions.list(project=project.id)
    client.projects.update(project.id, model_version=prediction.model_version, show_collab_predictions=True)
    task = prediction.task
    print(f"project {project.id}, backend {ml.id}, task {task}: {len(prediction.result)} regions")

    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(f"{args.ls}/user/login/")
        page.fill("input[name=email]", args.user)
        page.fill("input[name=password]", args.password)
        page.click("button[type=submit]")
        page.wait_for_load_state("networkidle")
        page.goto(f"{args.ls}/projects/{project.id}/data?task={task}")
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(6000)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=args.out)
        browser.close()


if __name__ == "__main__":
    main()
