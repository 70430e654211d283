"""Sphinx configuration of the jupyterlab-manatee documentation (MyST Markdown).

Build (warnings are errors, broken references included):

    python -m sphinx -W --keep-going -n -b html docs build/docs

The configuration reference (operators/configuration.md) is generated from
``ManateeConfig``'s traits and their ``help=`` by autodoc-traits, as in JupyterHub's docs.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from traitlets import Container, HasTraits, MetaHasTraits, TraitType, Undefined

ROOT = Path(__file__).resolve().parent.parent
# the package is importable from a checkout without an install (autodoc imports it)
sys.path.insert(0, str(ROOT))

from jupyterlab_manatee._version import __version__  # noqa: E402

project = "jupyterlab-manatee"
author = "jupyterlab-manatee contributors"
copyright = "jupyterlab-manatee contributors"
release = version = __version__

extensions = ["myst_parser", "sphinx.ext.autodoc", "autodoc_traits"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "**/.ipynb_checkpoints"]

# Links to headings (`page.md#a-heading`, `#a-heading`) resolve, and a missing one is a
# warning (an error under -W); the slugs are GitHub's, so the same links work there.
myst_heading_anchors = 4
myst_enable_extensions = ["colon_fence"]

# `-n`: every reference must resolve (a renamed trait breaks the build)
nitpicky = True
autodoc_member_order = "alphabetical"

html_theme = "pydata_sphinx_theme"
html_title = "jupyterlab-manatee"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_sidebars: dict[str, list[str]] = {"index": []}


def trait_class_signature(
    app: Sphinx,
    what: str,
    name: str,
    obj: Any,
    options: Any,
    signature: str | None,
    return_annotation: str | None,
) -> tuple[str, str] | None:
    """No signature for a Configurable: operators set its traits, they never construct it
    (and HasTraits' ``(*args: t.Any, ...)`` names a type Sphinx cannot resolve under -n)."""
    if isinstance(obj, MetaHasTraits):
        return "", ""
    return None


def trait_defaults(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    """Say the default autodoc-traits leaves out of its header: that of a list trait (its
    header shows ``List()``), and that a default is computed when the server starts (from
    an environment variable or a folder: the help says which)."""
    if not isinstance(obj, TraitType) or not obj.metadata.get("config"):
        return
    owner = getattr(obj, "this_class", None)
    dynamic = isinstance(owner, type) and issubclass(owner, HasTraits)
    dynamic = dynamic and obj.name in owner._trait_default_generators
    if dynamic:
        lines += ["", "Default: computed when the server starts, as said above."]
    elif isinstance(obj, Container) and obj.default_value is Undefined:
        lines += ["", f"Default: ``{obj.default()!r}``"]


def setup(app: Sphinx) -> None:
    app.connect("autodoc-process-signature", trait_class_signature)
    app.connect("autodoc-process-docstring", trait_defaults)
