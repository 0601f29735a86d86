"""The manual's links land: every relative link in README.md and docs/ names a file that exists
and, with #anchor, a heading of that file (GitHub's slugs)."""

from __future__ import annotations

import functools
import re
from pathlib import Path

from tests.conftest import REPO

LINK = re.compile(r"\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)


def pages() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


@functools.cache  # a page's headings, read once however many links name it
def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return {slug(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in LINK.findall(FENCE.sub("", page.read_text(encoding="utf-8"))):
        if re.match(r"[a-z]+:", target):  # https:, mailto: ...: not this repository's
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target}: no file {linked}")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading #{anchor} in {linked.name}")
    return broken


def test_every_relative_link_names_a_file_and_heading_that_exist():
    broken = {str(p.relative_to(REPO)): b for p in pages() if (b := broken_links(p))}
    assert not broken, broken


def test_the_slugs_are_githubs():
    assert slug("FID's floor and its bias") == "fids-floor-and-its-bias"
    assert slug("Self-modulated G on the defaults") == "self-modulated-g-on-the-defaults"
    assert slug("`dvc exp run`: experiments") == "dvc-exp-run-experiments"
