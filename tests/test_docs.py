"""The documentation: the Sphinx site under docs/ builds with warnings as errors (a link
to a missing page, heading or file, or a reference to a renamed setting, is a warning),
and the Markdown files outside it (the README, tutorials/, examples-data/), which Sphinx
does not read, link only to files and headings that exist."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

#: ``[text](target)`` and ``![alt](target)``; a target never holds a space or ``)`` here
LINK_RE = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE_RE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def github_slug(heading: str) -> str:
    """The anchor GitHub (and MyST's default) gives a heading: lowercase, punctuation
    dropped, spaces as hyphens."""
    text = heading.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(markdown: Path) -> set[str]:
    """The anchors of a Markdown file's headings (code blocks left out)."""
    text = FENCE_RE.sub("", markdown.read_text())
    return {github_slug(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", text, re.MULTILINE)}


def broken_links(markdown: Path) -> list[str]:
    """Each relative link of ``markdown`` whose file, or heading, does not exist."""
    broken = []
    text = FENCE_RE.sub("", markdown.read_text())
    for target in LINK_RE.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):
            continue  # https:, mailto:
        path_part, _, anchor = target.partition("#")
        path = (markdown.parent / path_part).resolve() if path_part else markdown
        if not path.exists():
            broken.append(f"{target}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{target}: no heading with that anchor")
    return broken


def outside_markdown() -> list[Path]:
    """The Markdown files the repository tracks outside docs/."""
    listed = subprocess.run(
        ["git", "ls-files", "*.md"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    return [REPO / name for name in listed if not name.startswith("docs/")]


def test_the_docs_build_with_warnings_as_errors(tmp_path):
    sphinx = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-q", "-b", "html"]
    built = subprocess.run(
        [*sphinx, str(REPO / "docs"), str(tmp_path / "html")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr
    # the configuration reference is generated from the code, one entry per setting
    reference = (tmp_path / "html" / "operators" / "configuration.html").read_text()
    assert "c.ManateeConfig.api_url" in reference
    assert "c.ManateeConfig.image_repository" in reference


def test_the_markdown_outside_docs_links_only_to_what_exists():
    files = outside_markdown()
    assert REPO / "README.md" in files and REPO / "tutorials" / "README.md" in files

    broken = {str(f.relative_to(REPO)): broken_links(f) for f in files}

    assert {name: links for name, links in broken.items() if links} == {}


def test_a_link_to_a_missing_file_or_heading_is_found(tmp_path):
    """The control: the check above does find what it looks for."""
    (tmp_path / "other.md").write_text("# Other\n\n## A heading's words\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](other.md#a-headings-words) [gone](missing.md) [no anchor](other.md#nope)\n"
        "```\n[in code](not-checked.md)\n```\n"
    )

    assert broken_links(page) == [
        "missing.md: no such file",
        "other.md#nope: no heading with that anchor",
    ]
