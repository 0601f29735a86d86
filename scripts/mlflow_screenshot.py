"""A screenshot of MLflow's run comparison: FID against the param that differs, the params
and metrics that differ, and the two runs' sample grids side by side, for the README.

    python scripts/mlflow_screenshot.py --port 5077 --out docs/images/mlflow_compare.png \\
        RUN_ID RUN_ID

Needs a running `mlflow ui` on --port, Playwright (`pip install playwright`) and a Chromium
(Debian's /usr/bin/chromium by default): scripts/readme_pictures.sh starts the server and
picks the runs.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from urllib.parse import quote

import mlflow

from ganlab import tracking

GRID = "samples.png"  # the sample grid the render stage logs at the run's top level


def compare_url(port: int, run_ids: list[str]) -> str:
    experiments = sorted({mlflow.get_run(run_id).info.experiment_id for run_id in run_ids})
    query = f"runs={quote(json.dumps(run_ids))}&experiments={quote(json.dumps(experiments))}"
    return f"http://127.0.0.1:{port}/#/compare-runs?{query}"


def screenshot(url: str, run_ids: list[str], out: Path, chromium: str) -> None:
    """Open the comparison, show only what differs, preview the sample grids, photograph."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1500, "height": 2100})
        page.goto(url)
        page.get_by_text("Artifacts", exact=True).first.wait_for(timeout=60_000)
        close = page.locator('[data-component-id="mlflow.assistant.chat_panel.close"]')
        if close.count():  # MLflow 3's assistant panel takes a third of the page
            close.first.click()
        for switch in page.get_by_role("switch").all():  # "Show diff only", each section
            switch.click()
        page.locator(f'[data-testid="artifact-tree-node"][artifact-name="{GRID}"]').click()
        grids = page.locator("img[src^='blob:']:visible")  # the previews, one per run
        grids.nth(len(run_ids) - 1).wait_for(timeout=60_000)
        page.wait_for_function("[...document.images].every(image => image.complete)")
        _plot_metric(page, "fid")
        page.get_by_text("Run details", exact=True).first.click()  # folded: room for the rest
        page.wait_for_timeout(500)
        top = page.get_by_text("Visualizations", exact=True).first.bounding_box()
        bottom = grids.last.bounding_box()
        clip = {"x": 0, "y": top["y"] - 16, "width": 1500}
        clip["height"] = bottom["y"] + bottom["height"] + 16 - clip["y"]
        page.screenshot(path=str(out), clip=clip)
        browser.close()


def _plot_metric(page, metric: str) -> None:
    """The comparison's parallel-coordinates plot: the differing param against `metric`
    (MLflow opens it on the first metric, alphabetically)."""
    chosen = page.get_by_text("Metrics:", exact=True).locator("xpath=following::input[1]")
    chosen.click()
    chosen.press("Backspace")  # the metric MLflow picked
    chosen.fill(metric)
    options = page.locator("[class*='select-item-option-content']")
    options.filter(has_text=re.compile(rf"^{re.escape(metric)}$")).first.click()
    page.keyboard.press("Escape")
    page.wait_for_timeout(1500)


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    arguments.add_argument("run_ids", nargs=2, help="the two runs to compare")
    arguments.add_argument("--port", type=int, default=5077, help="where `mlflow ui` listens")
    arguments.add_argument("--out", type=Path, default=Path("docs/images/mlflow_compare.png"))
    arguments.add_argument("--chromium", default="/usr/bin/chromium")
    args = arguments.parse_args()
    tracking.connect()
    screenshot(compare_url(args.port, args.run_ids), args.run_ids, args.out, args.chromium)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
