"""The extension inside a real JupyterHub: configurable-http-proxy, a local process spawner,
a test authenticator, two users, and the local backend as the ManaTEE API.

The hub user name is the creator; one user's server never reaches another's jobs; a
user name the API would refuse is refused or mapped, as configured; the hub's auth guards
every route.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import requests

from jupyterlab_manatee.remote.api_client import ManateeApiClient
from tests.support import REPO, free_port, wait_until

SERVICE_TOKEN = "hub-test-service-token-0123456789"
USER_TOKEN = "manatee-user-token-for-the-api"
FINISHED = 5


def configurable_http_proxy() -> str | None:
    """The proxy from npm: on PATH, or where ./dev installs it (.tools/)."""
    local = REPO / ".tools" / "node_modules" / ".bin" / "configurable-http-proxy"
    return shutil.which("configurable-http-proxy") or (str(local) if local.exists() else None)


HUB_CONFIG = """
c = get_config()  # noqa
c.JupyterHub.bind_url = "http://127.0.0.1:{port}"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub_port}"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.ConfigurableHTTPProxy.command = [{proxy!r}]
c.JupyterHub.db_url = "sqlite:///{state}/hub.sqlite"
c.JupyterHub.cookie_secret_file = "{state}/cookie_secret"
c.JupyterHub.pid_file = "{state}/hub.pid"
c.ConfigurableHTTPProxy.pid_file = "{state}/proxy.pid"
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = "{state}/home/{{username}}"
c.Spawner.cmd = [{singleuser!r}]
c.Spawner.args = {args!r}
c.Spawner.start_timeout = 60
c.Spawner.http_timeout = 60
c.Spawner.environment = {{
    "DATA_CLEAN_ROOM_HOST": "{api}",
    "USER_TOKEN": "{user_token}",
    "MANATEE_EXTRA_ENV_EXECUTION_STAGE": '"2"',
    "EXECUTION_STAGE": '"1"',
}}
c.JupyterHub.services = [{{"name": "tester", "api_token": "{service_token}"}}]
c.JupyterHub.load_roles = [
    {{
        "name": "tester",
        "scopes": ["admin:users", "admin:servers", "tokens", "access:servers"],
        "services": ["tester"],
    }}
]


def map_names_for_some_users(spawner):
    # one hub, both policies: users named "mapped-..." get the 'safe' creator mapping
    if spawner.user.name.startswith("mapped-"):
        spawner.args = [*spawner.args, "--ManateeConfig.creator_mapping=safe"]


c.Spawner.pre_spawn_hook = map_names_for_some_users
"""


class Hub:
    def __init__(self, url: str, state: Path) -> None:
        self.url = url
        self.state = state
        self.api = requests.Session()
        self.api.headers["Authorization"] = f"token {SERVICE_TOKEN}"

    def user(self, name: str) -> requests.Session:
        """A session authenticated as ``name``, whose server is running."""
        self.api.post(f"{self.url}/hub/api/users/{name}").raise_for_status()
        response = self.api.post(f"{self.url}/hub/api/users/{name}/server")
        assert response.status_code in (201, 202), response.text
        wait_until(
            lambda: self.api.get(f"{self.url}/hub/api/users/{name}").json()["servers"][""]["ready"],
            60,
            f"{name}'s server",
        )
        token = self.api.post(
            f"{self.url}/hub/api/users/{name}/tokens", json={"note": "manatee test"}
        )
        token.raise_for_status()
        session = requests.Session()
        session.headers["Authorization"] = f"token {token.json()['token']}"
        return session

    def home(self, name: str) -> Path:
        return self.state / "home" / name

    def route(self, name: str, *parts: str) -> str:
        return "/".join([self.url, "user", name, "manatee", *parts])


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    from jupyterlab_manatee.local_backend import LocalBackend

    backend = LocalBackend(
        data_dir=tmp_path_factory.mktemp("hub-backend"), token=USER_TOKEN, reconcile_interval=0
    )
    with backend.running_in_thread() as b:
        yield b


@pytest.fixture(scope="module")
def hub(backend, tmp_path_factory):
    proxy = configurable_http_proxy()
    if proxy is None:
        if os.environ.get("CI"):
            pytest.fail("configurable-http-proxy is missing: ./dev installs it into .tools/")
        pytest.skip("configurable-http-proxy is not installed (./dev installs it)")
    state = tmp_path_factory.mktemp("hub")
    port = free_port()
    config = state / "jupyterhub_config.py"
    config.write_text(
        HUB_CONFIG.format(
            port=port,
            hub_port=free_port(),
            proxy_api_port=free_port(),
            proxy=proxy,
            state=state,
            singleuser=str(Path(sys.executable).with_name("jupyterhub-singleuser")),
            args=["--allow-root"] if os.geteuid() == 0 else [],
            api=backend.url,
            user_token=USER_TOKEN,
            service_token=SERVICE_TOKEN,
        )
    )
    log = open(state / "hub.log", "wb")
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("jupyterhub")), "-f", str(config)],
        cwd=state,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: requests.get(f"{url}/hub/api/").ok, 60, "the hub")
        yield Hub(url, state)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def write_notebook(folder: Path, name: str = "nb.ipynb") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("import os\nprint(os.environ['EXECUTION_STAGE'])"))
    (folder / name).write_text(nbformat.writes(nb))


def submit(hub: Hub, session: requests.Session, user: str) -> dict:
    write_notebook(hub.home(user) / "work")
    reply = session.post(
        hub.route(user, "jobs"), json={"path": "work/nb.ipynb", "filename": "nb.ipynb"}
    )
    assert reply.status_code == 200, reply.text
    return reply.json()


def jobs_seen_by_the_api(backend, creator: str) -> list[dict]:
    import asyncio

    client = ManateeApiClient(backend.url, USER_TOKEN)
    return asyncio.run(client.query(creator=creator, page=1, page_size=100))["jobs"]


@pytest.fixture(scope="module")
def alice(hub):
    return hub.user("alice")


@pytest.fixture(scope="module")
def bob(hub):
    return hub.user("bob")


def test_each_users_server_serves_the_extension_under_its_prefix(hub, alice, bob):
    for name, session in (("alice", alice), ("bob", bob)):
        reply = session.get(hub.route(name, "config"))
        assert reply.status_code == 200, reply.text
        config = reply.json()
        assert config["creator"] == name
        assert config["configured"] and config["reachable"]


def test_the_creator_the_api_sees_is_the_hub_user_name(hub, backend, alice):
    submitted = submit(hub, alice, "alice")
    (job,) = [j for j in jobs_seen_by_the_api(backend, "alice") if j["uuid"] == submitted["uuid"]]
    assert job["creator"] == "alice"


def test_alice_cannot_see_download_or_delete_bobs_jobs(hub, backend, alice, bob):
    bobs = submit(hub, bob, "bob")
    bobs_job = next(j for j in jobs_seen_by_the_api(backend, "bob") if j["uuid"] == bobs["uuid"])

    listing = alice.get(hub.route("alice", "jobs"), params={"page_size": 100}).json()
    assert bobs["uuid"] not in {j["uuid"] for j in listing["jobs"]}
    download = alice.post(hub.route("alice", "output"), json={"id": bobs_job["id"]})
    assert download.status_code == 404
    assert alice.delete(hub.route("alice", "jobs", bobs["uuid"])).status_code == 200
    assert bobs["uuid"] in {j["uuid"] for j in jobs_seen_by_the_api(backend, "bob")}

    through_bobs_server = alice.get(hub.route("bob", "jobs"), allow_redirects=False)
    assert through_bobs_server.status_code == 403


def test_requests_without_the_hubs_auth_are_refused(hub, alice):
    for method, parts in (("GET", ["jobs"]), ("POST", ["jobs"]), ("GET", ["config"])):
        response = requests.request(method, hub.route("alice", *parts), allow_redirects=False)
        assert response.status_code in (302, 403), (method, parts, response.status_code)
        assert "jobs" not in response.text


def test_a_user_name_the_api_refuses_is_refused_with_the_setting_to_change(hub):
    name = "a-very-long-user-name-over-31-characters"
    session = hub.user(name)
    reply = session.get(hub.route(name, "jobs"))
    assert reply.status_code == 403
    assert "creator_mapping" in reply.json()["message"]


def test_with_safe_mapping_an_unsafe_user_name_becomes_a_safe_creator(hub, backend):
    from jupyterlab_manatee.config import safe_creator

    name = "mapped-dave@example.com-with-a-long-name"
    session = hub.user(name)
    config = session.get(hub.route(name, "config")).json()
    assert config["creator"] == safe_creator(name) and config["creator_warning"] is None
    submitted = submit(hub, session, name)
    creators = {j["uuid"]: j["creator"] for j in jobs_seen_by_the_api(backend, config["creator"])}
    assert creators[submitted["uuid"]] == config["creator"]
