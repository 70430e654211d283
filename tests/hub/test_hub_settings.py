"""``hub.config`` holds only settings the chart's JupyterHub knows, judged by that version's
own packages (``tests/hub/hub_traits.py``): a setting the hub lacks is ignored, and a
values file that looks safe is not (``Authenticator.allow_all`` on JupyterHub 4.0.2)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.hub.hub_traits import (
    CHART_CLASSES,
    CHART_HUB_PACKAGES,
    PackageUnavailable,
    TraitIndex,
    chart_index,
    chart_version,
    hub_config_problems,
    in_ci,
    wheel,
)

VALUES = Path(__file__).resolve().parents[2] / "deploy" / "z2jh-values.yaml"


@pytest.fixture(scope="module")
def index() -> TraitIndex:
    """The chart's hub packages from PyPI; unavailable, a failure in CI (a skip elsewhere)."""
    try:
        return chart_index(chart_version(VALUES.read_text()))
    except PackageUnavailable as e:
        if in_ci():
            pytest.fail(f"the hub's packages are needed to check hub.config: {e}")
        pytest.skip(f"the hub's packages are needed to check hub.config: {e}")


def _problems(index: TraitIndex, hub_config: dict[str, Any]) -> list[str]:
    return hub_config_problems(hub_config, index, CHART_CLASSES["3.0.3"])


def test_the_values_name_chart_3_0_3_whose_hub_is_jupyterhub_4_0_2():
    version = chart_version(VALUES.read_text())
    assert version == "3.0.3"
    assert CHART_HUB_PACKAGES[version]["jupyterhub"] == "4.0.2"


def test_every_hub_config_key_of_the_values_is_a_setting_of_the_charts_hub(index):
    hub_config = yaml.safe_load(VALUES.read_text())["hub"]["config"]
    assert _problems(index, hub_config) == []


def test_a_setting_jupyterhub_4_0_2_has_passes(index):
    assert _problems(index, {"Authenticator": {"allowed_users": ["alice"]}}) == []


def test_a_made_up_setting_fails(index):
    [problem] = _problems(index, {"Authenticator": {"allowed_userz": ["alice"]}})
    assert problem.startswith("Authenticator.allowed_userz: not a setting of DummyAuthenticator")


def test_a_made_up_class_fails(index):
    [problem] = _problems(index, {"NoSuchAuthenticator": {"allowed_users": ["alice"]}})
    assert problem.startswith("NoSuchAuthenticator: no such class in jupyterhub 4.0.2")


def test_allow_all_is_refused_under_the_charts_default_authenticator(index):
    """The issue: JupyterHub 4.0.2 has no Authenticator.allow_all (JupyterHub 5 added it)."""
    [problem] = _problems(index, {"Authenticator": {"allow_all": False}})
    assert problem.startswith("Authenticator.allow_all: not a setting of DummyAuthenticator")


def test_allow_all_counts_under_oauthenticator_16_which_has_it(index):
    """Traitlets applies an Authenticator section to the configured subclass's traits."""
    hub_config = {
        "JupyterHub": {"authenticator_class": "google"},
        "Authenticator": {"allow_all": False},
        "GoogleOAuthenticator": {"allow_all": False, "hosted_domain": ["example.org"]},
    }
    assert _problems(index, hub_config) == []


def test_spawner_settings_are_judged_against_kubespawner_6_0_0(index):
    hub_config = {"KubeSpawner": {"image_pull_policy": "Always", "image_pull_polizy": "x"}}
    [problem] = _problems(index, hub_config)
    assert problem.startswith("KubeSpawner.image_pull_polizy: not a setting of KubeSpawner")


def test_the_dummy_authenticator_of_jupyterhub_4_0_2_has_no_allow_all(index):
    traits = index.config_traits("DummyAuthenticator")
    assert "allow_all" not in traits
    assert {"allowed_users", "admin_users", "password"} <= traits


def test_the_values_use_google_oauth_with_an_allow_list_and_no_allow_all():
    """Nobody logs in unless named: OAuthenticator 16 refuses everyone else by default."""
    hub_config = yaml.safe_load(VALUES.read_text())["hub"]["config"]
    assert hub_config["JupyterHub"]["authenticator_class"] == "google"
    google = hub_config["GoogleOAuthenticator"]
    assert google["allowed_users"] == ["alice"]
    assert "allow_all" not in google and "Authenticator" not in hub_config


def test_the_oauth_client_comes_from_a_required_secret():
    env = yaml.safe_load(VALUES.read_text())["hub"]["extraEnv"]
    refs = {name: env[name]["valueFrom"]["secretKeyRef"] for name in env}
    assert refs == {
        "OAUTH_CLIENT_ID": {"name": "manatee-hub-oauth", "key": "client-id"},
        "OAUTH_CLIENT_SECRET": {"name": "manatee-hub-oauth", "key": "client-secret"},
    }


def test_a_package_pypi_does_not_have_is_a_failure_naming_it(tmp_path: Path):
    with pytest.raises(PackageUnavailable, match=r"could not download jupyterhub==4\.0\.999"):
        wheel("jupyterhub", "4.0.999", tmp_path)


@pytest.mark.skipif(
    not os.environ.get("MANATEE_Z2JH_CHART_DIR"),
    reason="set MANATEE_Z2JH_CHART_DIR to the z2jh 3.0.3 chart's jupyterhub/ folder",
)
def test_the_pinned_hub_packages_and_classes_are_the_charts():
    """Against the chart's source (`git archive 3.0.3 jupyterhub images/hub`)."""
    chart = Path(os.environ["MANATEE_Z2JH_CHART_DIR"])
    pins = CHART_HUB_PACKAGES["3.0.3"]
    assert yaml.safe_load((chart / "Chart.yaml").read_text())["appVersion"] == pins["jupyterhub"]
    requirements = chart.parent / "images" / "hub" / "requirements.txt"
    if requirements.exists():  # beside the chart in the repository, not in a packaged chart
        lines = set(requirements.read_text().splitlines())
        assert {f"{name}=={pin}" for name, pin in pins.items()} <= lines
    defaults = yaml.safe_load((chart / "values.yaml").read_text())
    classes = CHART_CLASSES["3.0.3"]
    assert defaults["hub"]["config"]["JupyterHub"]["authenticator_class"] == "dummy"
    hub_config = (chart / "files" / "hub" / "jupyterhub_config.py").read_text()
    assert f'c.JupyterHub.spawner_class = "{classes["spawner_class"]}"' in hub_config
