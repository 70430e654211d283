"""The operator's files: the single-user Dockerfile passes hadolint and installs the wheel
at build time; the zero-to-jupyterhub values set everything the extension reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from traitlets.config import Config

from jupyterlab_manatee.config import ManateeConfig

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_dockerfile_passes_hadolint():
    hadolint = Path(sys.executable).with_name("hadolint")
    result = subprocess.run(
        [str(hadolint), str(DEPLOY / "Dockerfile")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


EXECUTOR_BASE = (
    "quay.io/jupyter/scipy-notebook"
    "@sha256:dc0f8efb6f288d5fc67a94715963282f8066cb3b93324131585edaa0a7a46780"
)


def _values() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "z2jh-values.yaml").read_text())


def test_dockerfile_base_is_pinned_to_the_executors_digest():
    text = (DEPLOY / "Dockerfile").read_text()
    [base] = [line.split()[1] for line in text.splitlines() if line.startswith("FROM ")]
    assert base == EXECUTOR_BASE


def test_the_stage2_package_list_describes_the_same_image_as_the_dockerfile():
    from jupyterlab_manatee.workspace import tee_image

    assert tee_image.TEE_IMAGE == EXECUTOR_BASE
    assert "@sha256:dc0f8efb6f28" in tee_image.PACKAGES_FILE.read_text()


def test_dockerfile_installs_the_wheel_at_build_time_on_the_executors_base_image():
    text = (DEPLOY / "Dockerfile").read_text()
    assert "pip install --no-cache-dir" in text and ".whl" in text
    assert "ENTRYPOINT" not in text and "before-notebook.d" not in text


def test_z2jh_values_set_what_the_extension_and_the_sdk_read():
    values = yaml.safe_load((DEPLOY / "z2jh-values.yaml").read_text())
    singleuser = values["singleuser"]
    assert singleuser["image"]["name"] and singleuser["image"]["tag"]
    env = singleuser["extraEnv"]
    for name in ("DATA_CLEAN_ROOM_HOST", "USER_TOKEN", "EXECUTION_STAGE"):
        assert name in env
    assert any(name.startswith("MANATEE_EXTRA_ENV_") for name in env)
    settings = singleuser["extraFiles"]["manatee-config"]["data"]["ManateeConfig"]
    traits = ManateeConfig.class_traits(config=True)
    assert set(settings) <= set(traits)
    loaded = ManateeConfig(config=Config({"ManateeConfig": settings}))
    assert (loaded.creator_mapping, loaded.max_workspace_size) == ("safe", 2 * 1024**3)


def test_z2jh_values_pin_the_deployment_a_verified_verdict_must_come_from(monkeypatch):
    env = yaml.safe_load((DEPLOY / "z2jh-values.yaml").read_text())["singleuser"]["extraEnv"]
    for name in ("MANATEE_PROJECT_ID", "MANATEE_TEE_SERVICE_ACCOUNTS", "MANATEE_IMAGE_REPOSITORY"):
        monkeypatch.setenv(name, env[name])

    loaded = ManateeConfig()

    assert loaded.project_id == "my-manatee-project"
    assert loaded.tee_service_accounts == [
        "dcr-prod-cvm-sa@my-manatee-project.iam.gserviceaccount.com"
    ]
    assert loaded.image_repository == "us-docker.pkg.dev/my-manatee-project/jobs"


def test_z2jh_values_let_user_pods_reach_the_apis_cluster_ip():
    policy = _values()["singleuser"]["networkPolicy"]
    assert policy["enabled"] is True
    assert policy["egressAllowRules"]["privateIPs"] is True


def test_z2jh_values_allow_ipv6_egress_as_their_ipv4_rules_allow_all_of_ipv4():
    """z2jh's egress rules are IPv4 only: on a dual-stack cluster enforcing policies, IPv6
    would be dropped. Private, non-private (the chart's default) and metadata together are
    all of IPv4, so the mirror is all of IPv6, with no exception."""
    policy = _values()["singleuser"]["networkPolicy"]
    rules = policy["egressAllowRules"]
    assert rules["privateIPs"] is True and rules["cloudMetadataServer"] is True
    assert "nonPrivateIPs" not in rules  # the chart's default, true
    assert policy["egress"] == [{"to": [{"ipBlock": {"cidr": "::/0"}}]}]


def test_z2jh_values_run_stage1_as_upstreams_workload_identity_account():
    singleuser = _values()["singleuser"]
    assert singleuser["serviceAccountName"] == "jupyter-k8s-pod-sa"
    assert singleuser["nodeSelector"] == {"iam.gke.io/gke-metadata-server-enabled": "true"}


def test_z2jh_values_let_pods_reach_the_metadata_server():
    singleuser = _values()["singleuser"]
    assert singleuser["cloudMetadata"] == {"blockWithIptables": False}
    assert singleuser["networkPolicy"]["egressAllowRules"]["cloudMetadataServer"] is True


def test_z2jh_values_start_pods_without_the_user_token_secret():
    ref = _values()["singleuser"]["extraEnv"]["USER_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "manatee-api", "key": "user-token", "optional": True}


def test_the_no_download_option_disables_both_download_commands_in_jupyterlab(tmp_path: Path):
    """Mount the values' page_config.json where JupyterLab looks and ask JupyterLab."""
    option = _values()["singleuser"]["extraFiles"]["no-download"]
    assert option["mountPath"] == "/etc/jupyter/labconfig/page_config.json"
    labconfig = tmp_path / "etc-jupyter" / "labconfig"
    labconfig.mkdir(parents=True)
    (labconfig / "page_config.json").write_text(json.dumps(option["data"]))
    probe = (
        "import json; from jupyterlab_server.config import get_page_config; "
        "print(json.dumps(get_page_config([])['disabledExtensions']))"
    )
    env = {**os.environ, "JUPYTER_CONFIG_PATH": str(tmp_path / "etc-jupyter")}
    result = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    disabled = json.loads(result.stdout)
    assert "@jupyterlab/docmanager-extension:download" in disabled
    assert "@jupyterlab/filebrowser-extension:download" in disabled


def helm_merge(*files: dict[str, Any]) -> dict[str, Any]:
    """Helm's merge of ``--values`` files in order: a later file wins, maps merge key by
    key, anything else (lists, strings, null) replaces what was there."""

    def merge(base: Any, override: Any) -> Any:
        if isinstance(base, dict) and isinstance(override, dict):
            return {**base, **{k: merge(base.get(k), v) for k, v in override.items()}}
        return override

    merged: dict[str, Any] = {}
    for values in files:
        merged = merge(merged, values)
    return merged


_ABSENT = object()


def _at(values: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(values, dict) or key not in values:
            return _ABSENT
        values = values[key]
    return values


#: What upstream's deployment/jupyterhub/config.yaml sets that the overlay must leave as is:
#: terminals off (NOTEBOOK_ARGS, which only the image's own start script reads, hence cmd:
#: null instead of the chart's jupyterhub-singleuser), Jupyter Server as the single-user app,
#: the image pulled on every start.
UPSTREAM_KEPT: dict[tuple[str, ...], Any] = {
    ("singleuser", "cmd"): None,
    ("singleuser", "image", "pullPolicy"): "Always",
    ("singleuser", "extraEnv", "NOTEBOOK_ARGS"): (
        "--NotebookApp.terminals_enabled=False --NotebookApp.allow_root=False"
    ),
    ("singleuser", "extraEnv", "JUPYTERHUB_SINGLEUSER_APP"): "jupyter_server.serverapp.ServerApp",
}

#: What upstream's file sets that the overlay replaces on purpose: the image (ours), and
#: placeholders upstream's deploy script fills with --set (the overlay gives the same values).
UPSTREAM_REPLACED = {
    ("singleuser", "image", "name"),
    ("singleuser", "image", "tag"),
    ("singleuser", "serviceAccountName"),
    ("singleuser", "extraEnv", "DATA_CLEAN_ROOM_HOST"),
}


def _unfold(paths: dict[tuple[str, ...], Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for path, value in paths.items():
        node = values
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return values


def _leaves(values: Any, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    if isinstance(values, dict) and values:
        return {k: v for key, sub in values.items() for k, v in _leaves(sub, (*path, key)).items()}
    return {path: values}


def _overridden(upstream: dict[str, Any], overlay: dict[str, Any]) -> list[str]:
    """Upstream's settings that ``overlay``, given after it, changes (not on purpose)."""
    merged = helm_merge(upstream, overlay)
    return [
        ".".join(path)
        for path, value in _leaves(upstream).items()
        if path not in UPSTREAM_REPLACED and _at(merged, path) != value
    ]


def test_a_later_values_file_merges_maps_and_replaces_lists():
    merged = helm_merge({"a": {"x": 1, "l": [1, 2]}}, {"a": {"y": 2, "l": [3]}})
    assert merged == {"a": {"x": 1, "y": 2, "l": [3]}}


def test_a_null_in_an_earlier_file_survives_a_later_file_without_the_key():
    assert helm_merge({"cmd": None}, {"other": 1}) == {"cmd": None, "other": 1}


def test_the_overlay_keeps_upstreams_terminals_off_app_cmd_and_pull_policy():
    assert _overridden(_unfold(UPSTREAM_KEPT), _values()) == []


def test_an_overlay_setting_the_chart_cmd_would_be_caught():
    overlay = helm_merge(_values(), {"singleuser": {"cmd": "jupyterhub-singleuser"}})
    assert _overridden(_unfold(UPSTREAM_KEPT), overlay) == ["singleuser.cmd"]


def test_an_overlay_replacing_extra_env_as_a_list_would_be_caught():
    overlay = helm_merge(_values(), {"singleuser": {"extraEnv": [{"name": "A", "value": "1"}]}})
    assert _overridden(_unfold(UPSTREAM_KEPT), overlay) == [
        "singleuser.extraEnv.NOTEBOOK_ARGS",
        "singleuser.extraEnv.JUPYTERHUB_SINGLEUSER_APP",
    ]


@pytest.mark.skipif(
    not os.environ.get("MANATEE_UPSTREAM_JUPYTERHUB_CONFIG"),
    reason="set MANATEE_UPSTREAM_JUPYTERHUB_CONFIG to upstream's deployment/jupyterhub/config.yaml",
)
def test_the_overlay_changes_nothing_of_upstreams_file_but_the_image_and_its_placeholders():
    """Against the real file: all of it survives the overlay, and it holds UPSTREAM_KEPT."""
    upstream = yaml.safe_load(Path(os.environ["MANATEE_UPSTREAM_JUPYTERHUB_CONFIG"]).read_text())
    assert UPSTREAM_KEPT.items() <= _leaves(upstream).items()
    assert _overridden(upstream, _values()) == []


def _merge(base: Any, override: Any) -> Any:
    """Helm's merge of a values file over the chart's defaults (maps merge, rest replaces)."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _merge(base.get(key), value) if key in base else value
        return merged
    return override


@pytest.mark.skipif(
    not os.environ.get("MANATEE_Z2JH_CHART_DIR"),
    reason="set MANATEE_Z2JH_CHART_DIR to the z2jh 3.0.3 chart's jupyterhub/ folder "
    "(values.yaml, values.schema.yaml); its registry is not reachable from CI",
)
def test_z2jh_values_validate_against_the_3_0_3_chart_schema():
    """What `helm install --version=3.0.3` checks: our values over the chart's defaults."""
    import jsonschema

    chart = Path(os.environ["MANATEE_Z2JH_CHART_DIR"])
    schema = yaml.safe_load((chart / "values.schema.yaml").read_text())
    defaults = yaml.safe_load((chart / "values.yaml").read_text())
    jsonschema.validate(_merge(defaults, _values()), schema)
