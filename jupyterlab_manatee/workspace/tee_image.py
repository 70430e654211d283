"""What the TEE's stage-2 image provides, so a notebook that would fail there is caught here.

Upstream's executor image is Jupyter Docker Stacks' ``scipy-notebook`` pinned by digest
(``TEE_IMAGE``) plus a token tool: no xgboost, no google-auth, no google-cloud-storage.
Two files beside this module describe it:

- ``tee-image-packages.txt``: a pip requirements list, every package pinned, derived from
  the packages scipy-notebook's Dockerfile (and its parents') install, at the versions
  current when upstream pinned the digest (October 2024, Python 3.11); their dependencies
  are pinned as pip resolved them. The image's own package manifest (published with the
  image's build, beside the registry) is not reachable from here, so the list is a
  reconstruction; the absences that break notebooks (xgboost, google-auth,
  google-cloud-storage) are the ones the API contract states. The local backend
  runs stage-2 notebooks in a virtual environment made from it (``manatee-local
  --stage2-python``; ``./dev run`` makes it).
- ``tee-image-modules.txt``: the top-level modules importable in that environment (for a
  namespace package such as ``google``, its ``google.<sub>`` packages), generated from it
  by ``python -m jupyterlab_manatee.workspace.tee_image modules <python>``. The submit dialog's
  import warning reads it.

To follow a new digest: update ``TEE_IMAGE`` (and deploy/Dockerfile's ``FROM``), the pins
in the packages file, rebuild the environment and regenerate the modules file.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import subprocess
import sys
from pathlib import Path

TEE_IMAGE = (
    "quay.io/jupyter/scipy-notebook"
    "@sha256:dc0f8efb6f288d5fc67a94715963282f8066cb3b93324131585edaa0a7a46780"
)
#: the package data files stay at the package top (pyproject, ./dev and the docs name them)
HERE = Path(__file__).resolve().parents[1]
PACKAGES_FILE = HERE / "tee-image-packages.txt"
MODULES_FILE = HERE / "tee-image-modules.txt"

#: Import names of pip packages whose name says otherwise (others: lowercase, "-" -> "_").
PIP_MODULES: dict[str, tuple[str, ...]] = {
    "google-cloud-storage": ("google.cloud.storage",),
    "google-cloud-resource-manager": ("google.cloud.resourcemanager",),
    "google-cloud-bigquery": ("google.cloud.bigquery",),
    "google-auth": ("google.auth", "google.oauth2"),
    "google-api-core": ("google.api_core",),
    "protobuf": ("google.protobuf",),
    "scikit-learn": ("sklearn",),
    "scikit-image": ("skimage",),
    "beautifulsoup4": ("bs4",),
    "pyyaml": ("yaml",),
    "pillow": ("PIL",),
    "opencv-python": ("cv2",),
    "opencv-python-headless": ("cv2",),
    "python-dateutil": ("dateutil",),
    "xgboost": ("xgboost",),
    "xgboost-cpu": ("xgboost",),
    "tables": ("tables",),
    "torch": ("torch",),
}


def _name(requirement: str) -> str:
    """The distribution name of a requirement (``pkg[extra]>=1; marker`` -> ``pkg``)."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return re.sub(r"[-_.]+", "-", match.group(1)).lower() if match else ""


def pip_modules(package: str) -> tuple[str, ...]:
    """The modules ``pip install <package>`` makes importable (best known)."""
    name = _name(package)
    return PIP_MODULES.get(name, (name.replace("-", "_"),))


@functools.cache
def image_packages() -> dict[str, str]:
    """The image's pip packages and pinned versions, from the packages file."""
    packages: dict[str, str] = {}
    for line in PACKAGES_FILE.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            packages[_name(name)] = version.strip()
    return packages


@functools.cache
def image_modules() -> frozenset[str]:
    """Importable names in the image: the modules file and the standard library."""
    listed = {
        line.strip()
        for line in MODULES_FILE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    return frozenset(listed | set(sys.stdlib_module_names))


def provides(module: str, available: frozenset[str] | set[str]) -> bool:
    """Whether ``import module`` finds it among ``available`` names.

    A plain top-level name counts for all its submodules; a namespace package (listed as
    ``google.protobuf``, not ``google``) counts only for the subpackages listed.
    """
    parts = module.split(".")
    return any(".".join(parts[:n]) in available for n in range(1, len(parts) + 1))


_LIST_MODULES = r"""
import json, os, pkgutil, sys, sysconfig
site = {sysconfig.get_paths()[key] for key in ("purelib", "platlib")}
names = set()
for info in pkgutil.iter_modules(sorted(site)):
    path = os.path.join(info.module_finder.path, info.name)
    if info.ispkg and not os.path.exists(os.path.join(path, "__init__.py")):
        names.update(f"{info.name}.{sub.name}" for sub in pkgutil.iter_modules([path]))
    else:
        names.add(info.name)
for folder in sorted(site):  # namespace packages that pkgutil does not report
    for entry in os.listdir(folder):
        full = os.path.join(folder, entry)
        if entry.isidentifier() and os.path.isdir(full) and not os.path.exists(
            os.path.join(full, "__init__.py")
        ) and not entry.endswith(("dist-info", "egg-info")) and entry != "__pycache__":
            names.update(f"{entry}.{sub.name}" for sub in pkgutil.iter_modules([full]))
names.update(sys.builtin_module_names)
print(json.dumps(sorted(names)))
"""


def list_modules(python: str) -> list[str]:
    """The top-level modules the environment of ``python`` can import (not the stdlib)."""
    result = subprocess.run(
        [python, "-I", "-c", _LIST_MODULES], capture_output=True, text=True, check=True
    )
    return sorted(set(json.loads(result.stdout)) - set(sys.stdlib_module_names))


def main(argv: list[str] | None = None) -> int:
    """``modules PYTHON``: print the modules file for the environment of ``PYTHON``."""
    parser = argparse.ArgumentParser(prog="python -m jupyterlab_manatee.workspace.tee_image")
    parser.add_argument("command", choices=["modules"])
    parser.add_argument("python", help="the stage-2 environment's python")
    args = parser.parse_args(argv)
    print(f"# Top-level modules importable in {TEE_IMAGE}'s stand-in environment")
    print(
        "# (from tee-image-packages.txt); regenerate: python -m "
        "jupyterlab_manatee.workspace.tee_image"
    )
    print("# modules <that environment's python> > jupyterlab_manatee/tee-image-modules.txt")
    for name in list_modules(args.python):
        print(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
