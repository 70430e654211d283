"""The docs' screenshots come from the current UI: `make_screenshots` walks through the
tutorial in a real JupyterLab and writes every picture the tutorial shows."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from PIL import Image

from tests.browser.lab_support import REPO, require_browser
from tests.browser.make_screenshots import SHOTS

TUTORIAL = REPO / "tutorials" / "README.md"


def test_every_screenshot_the_tutorial_shows_is_one_the_script_makes():
    shown = re.findall(r"\(\.\./docs/(tutorial-\d-[a-z0-9-]+\.png)\)", TUTORIAL.read_text())
    assert shown == [
        "tutorial-1-start.png",
        "tutorial-2-histograms.png",
        "tutorial-3-heatmap.png",
        "tutorial-4-regression-stage1.png",
        "tutorial-5-jobs.png",
        "tutorial-6-regression-stage2.png",
        "tutorial-7-report.png",
        "tutorial-8-report-claims.png",
    ]
    assert list(SHOTS) == shown
    assert all((REPO / "docs" / name).is_file() for name in shown)


def test_the_script_makes_every_screenshot_from_the_running_product(tmp_path: Path):
    require_browser()
    done = subprocess.run(
        [sys.executable, "-m", "tests.browser.make_screenshots", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(SHOTS)  # no part file left
    for name in SHOTS:
        with Image.open(tmp_path / name) as image:
            assert (image.format, image.size) == ("PNG", (1400, 1000)), name
