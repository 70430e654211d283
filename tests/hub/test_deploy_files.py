"""The operator's files: the single-user Dockerfile passes hadolint and installs the wheel
at build time; the zero-to-jupyterhub values set everything the extension reads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


def test_dockerfile_installs_the_wheel_at_build_time_on_the_executors_base_image():
    text = (DEPLOY / "Dockerfile").read_text()
    assert "FROM quay.io/jupyter/scipy-notebook:" in text
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
