"""Which ``hub.config`` keys the chart's JupyterHub actually knows, read from the real packages.

The z2jh chart passes ``hub.config`` to JupyterHub as traitlets config: a key the hub's
version lacks is only a warning in the hub's log, and the setting does nothing. So the
checker reads, for the chart version named in ``deploy/z2jh-values.yaml``, the wheels of
the packages its hub image pins (downloaded from PyPI with ``pip download --no-deps``, never
imported: they are older than this environment's) and collects each class's configurable
traits with :mod:`ast`, inheritance included.

Traitlets applies a section ``[C]`` to every configured object whose class has ``C`` in its
MRO, and checks the keys against that object's traits: so ``Authenticator.allow_all`` is a
setting under an authenticator that has ``allow_all`` (oauthenticator 16) and nothing under
JupyterHub 4's ``DummyAuthenticator``. The checker follows the same rule.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / "build" / "hub-packages"

#: What each chart version's hub image pins (images/hub/requirements.txt at the chart's tag;
#: JupyterHub is also the chart's appVersion). Only the packages whose classes hub.config
#: can name: the hub, the spawner, the authenticators, traitlets for the base classes.
CHART_HUB_PACKAGES: dict[str, dict[str, str]] = {
    "3.0.3": {
        "jupyterhub": "4.0.2",
        "jupyterhub-kubespawner": "6.0.0",
        "oauthenticator": "16.0.7",
        "traitlets": "5.9.0",
    },
}

#: What the chart configures before hub.config applies (files/hub/jupyterhub_config.py and
#: values.yaml at 3.0.3): the objects the hub creates and the classes they are.
CHART_CLASSES: dict[str, dict[str, str]] = {
    "3.0.3": {
        "app": "JupyterHub",
        "authenticator_class": "dummy",
        "spawner_class": "kubespawner.KubeSpawner",
        "proxy_class": "ConfigurableHTTPProxy",
    },
}

CHART_VERSION_RE = re.compile(r"^# z2jh-chart-version: (\S+)\s*$", re.MULTILINE)


class PackageUnavailable(RuntimeError):
    """A wheel the check needs could not be downloaded."""


def chart_version(values_text: str) -> str:
    """The chart version the values file declares (``# z2jh-chart-version: X``)."""
    found = CHART_VERSION_RE.findall(values_text)
    if len(found) != 1:
        raise ValueError("the values must name their chart once: '# z2jh-chart-version: <v>'")
    return found[0]


def wheel(package: str, version: str, cache: Path = CACHE) -> Path:
    """``package==version``'s wheel, from ``cache`` or downloaded there from PyPI."""
    stem = f"{package.replace('-', '_')}-{version}-"
    folder = cache / f"{package}-{version}"
    found = sorted(folder.glob(f"{stem}*.whl")) if folder.is_dir() else []
    if found:
        return found[0]
    folder.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:"),
            *("--disable-pip-version-check", "-q", "-d", str(folder), f"{package}=={version}"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    found = sorted(folder.glob(f"{stem}*.whl"))
    if result.returncode != 0 or not found:
        raise PackageUnavailable(
            f"could not download {package}=={version} from PyPI into {folder} "
            f"(pip said: {(result.stderr or result.stdout).strip()[-400:]})"
        )
    return found[0]


@dataclass
class ClassInfo:
    name: str
    module: str
    bases: list[str]
    traits: set[str]
    #: the module each imported name comes from (to tell another package's mixin)
    imports: dict[str, str]


@dataclass
class TraitIndex:
    """Classes, their bases and config traits, and entry points, of a set of wheels."""

    classes: dict[str, list[ClassInfo]] = field(default_factory=dict)
    #: entry-point group -> name -> "module:Class"
    entry_points: dict[str, dict[str, str]] = field(default_factory=dict)
    packages: list[str] = field(default_factory=list)

    @classmethod
    def from_wheels(cls, wheels: Iterable[Path]) -> TraitIndex:
        index = cls()
        for path in wheels:
            index.packages.append(" ".join(path.name.split("-")[:2]))
            with zipfile.ZipFile(path) as archive:
                for name in archive.namelist():
                    if name.endswith(".py") and "/tests/" not in name:
                        source = archive.read(name).decode("utf-8", "replace")
                        index._add_module(name[:-3].replace("/", "."), source)
                    elif name.endswith(".dist-info/entry_points.txt"):
                        index._add_entry_points(archive.read(name).decode())
        return index

    def _add_module(self, dotted: str, source: str) -> None:
        """One file (``a.b.__init__`` for a package): its classes and what it imports."""
        module = dotted.removesuffix(".__init__")
        package = module.split(".") if dotted.endswith(".__init__") else module.split(".")[:-1]
        try:
            tree = ast.parse(source)
        except SyntaxError:
            return
        imports: dict[str, str] = {}
        for node in tree.body:
            if isinstance(node, ast.ImportFrom):
                origin = node.module or ""
                if node.level:  # relative: from the module's own package
                    base = package[: len(package) - node.level + 1]
                    origin = ".".join([*base, origin]).strip(".")
                for alias in node.names:
                    imports[alias.asname or alias.name] = origin
            elif isinstance(node, ast.ClassDef):
                bases = [_base_name(b) for b in node.bases]
                info = ClassInfo(node.name, module, bases, _config_traits(node), imports)
                self.classes.setdefault(node.name, []).append(info)

    def _add_entry_points(self, text: str) -> None:
        group = ""
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("[") and line.endswith("]"):
                group = line[1:-1]
            elif "=" in line and group:
                name, target = (part.strip() for part in line.split("=", 1))
                self.entry_points.setdefault(group, {})[name] = target

    def resolve(self, spec: str, group: str) -> str:
        """A class name for an entry-point name (``dummy``) or a dotted path."""
        target = self.entry_points.get(group, {}).get(spec, spec)
        return re.split(r"[.:]", target)[-1]

    def _candidates(self, name: str, user: ClassInfo | None) -> list[ClassInfo]:
        """The classes ``name`` means: as imported into ``user``'s module, else defined
        there, else (a section name, an entry point) every configurable of that name."""
        infos = self.classes.get(name, [])
        if user is not None:
            origin = user.imports.get(name)
            if origin is not None:
                return [i for i in infos if i.module == origin or i.module.startswith(origin + ".")]
            return [i for i in infos if i.module == user.module]
        return [i for i in infos if "HasTraits" in self._names(i, strict=False)]

    def _lineage(self, info: ClassInfo, strict: bool = True) -> list[ClassInfo]:
        """``info`` and every class it inherits from, as far as the wheels define them.

        A base imported from another package (tornado's ``GoogleOAuth2Mixin``) has no
        traits: every configurable descends from traitlets, which is indexed. A base that
        is neither defined here nor imported from elsewhere fails the lookup."""
        seen: list[ClassInfo] = []
        todo = [info]
        while todo:
            current = todo.pop()
            if any(current is s for s in seen):
                continue
            seen.append(current)
            for base in current.bases:
                found = self._candidates(base, current)
                if found:
                    todo.extend(found)
                elif strict and base != "object" and not self._external(current.imports.get(base)):
                    raise LookupError(
                        f"{current.module}: base class {base} is in none of {self.packages}"
                    )
        return seen

    def _names(self, info: ClassInfo, strict: bool = True) -> set[str]:
        return {i.name for i in self._lineage(info, strict)}

    def _external(self, origin: str | None) -> bool:
        if not origin:
            return False
        top = origin.split(".")[0]
        return all(i.module.split(".")[0] != top for infos in self.classes.values() for i in infos)

    def ancestors(self, name: str) -> set[str]:
        """The names of ``name`` and of every class it inherits from."""
        return set().union(*(self._names(i) for i in self._candidates(name, None)))

    def config_traits(self, name: str) -> set[str]:
        """Every configurable trait of class ``name``, inherited ones included."""
        found = self._candidates(name, None)
        if not found:
            raise LookupError(f"no configurable class {name} in {self.packages}")
        return {t for info in found for i in self._lineage(info) for t in i.traits}


def _base_name(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Call):  # e.g. a metaclass helper wrapping the base
        return _base_name(node.func)
    return ast.unparse(node)


def _is_config(call: ast.expr) -> bool:
    """``Trait(..., config=True)`` or ``Trait(...).tag(config=True)`` (chained)."""
    while isinstance(call, ast.Call):
        for keyword in call.keywords:
            if (
                keyword.arg == "config"
                and isinstance(keyword.value, ast.Constant)
                and keyword.value.value is True
            ):
                return True
        func = call.func
        call = func.value if isinstance(func, ast.Attribute) else func
    return False


def _config_traits(node: ast.ClassDef) -> set[str]:
    names: set[str] = set()
    for statement in node.body:
        if isinstance(statement, ast.Assign) and _is_config(statement.value):
            names |= {t.id for t in statement.targets if isinstance(t, ast.Name)}
        elif (
            isinstance(statement, ast.AnnAssign)
            and statement.value is not None
            and isinstance(statement.target, ast.Name)
            and _is_config(statement.value)
        ):
            names.add(statement.target.id)
    return names


def hub_config_problems(
    hub_config: Mapping[str, Any], index: TraitIndex, chart: Mapping[str, str]
) -> list[str]:
    """One line per ``hub.config`` key that the hub of ``index`` would not apply."""
    jupyterhub = hub_config.get("JupyterHub", {}) or {}
    instances = [
        chart["app"],
        index.resolve(
            jupyterhub.get("authenticator_class", chart["authenticator_class"]),
            "jupyterhub.authenticators",
        ),
        index.resolve(
            jupyterhub.get("spawner_class", chart["spawner_class"]), "jupyterhub.spawners"
        ),
        index.resolve(jupyterhub.get("proxy_class", chart["proxy_class"]), "jupyterhub.proxies"),
    ]
    problems: list[str] = []
    for section, settings in hub_config.items():
        if not index.ancestors(section):
            problems.append(f"{section}: no such class in {', '.join(index.packages)}")
            continue
        users = [name for name in instances if section in index.ancestors(name)]
        owners = users or [section]
        known = set().union(*(index.config_traits(name) for name in owners))
        for key in settings or {}:
            if key not in known:
                problems.append(
                    f"{section}.{key}: not a setting of {' or '.join(owners)} in "
                    f"{', '.join(index.packages)}"
                )
    return problems


def chart_index(version: str, cache: Path = CACHE) -> TraitIndex:
    """The trait index of the chart ``version``'s hub packages (downloaded as needed)."""
    if version not in CHART_HUB_PACKAGES:
        raise LookupError(f"chart {version}: its hub packages are not listed in CHART_HUB_PACKAGES")
    pins = CHART_HUB_PACKAGES[version]
    return TraitIndex.from_wheels(wheel(name, pin, cache) for name, pin in pins.items())


def in_ci() -> bool:
    return bool(os.environ.get("CI"))
