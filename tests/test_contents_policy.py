"""The routes read and write the user's files, so the server's contents policy binds them:
an Authorizer that denies ``contents`` denies them too, and with
``ContentsManager.allow_hidden = False`` hidden folders are neither served nor shipped."""

from __future__ import annotations

import pytest
from jupyter_server.auth.authorizer import Authorizer

from tests.conftest import call, write_notebook


class NoContents(Authorizer):
    """Allows everything but the contents API (an operator's policy for some users)."""

    def is_authorized(self, handler, user, action, resource) -> bool:
        return resource != "contents"


@pytest.fixture
def api_url(fault_server) -> str:
    return fault_server.url


@pytest.fixture
def private_notebook(jp_root_dir):
    write_notebook(jp_root_dir / "private" / "nb.ipynb")
    (jp_root_dir / "private" / "salaries.csv").write_text("name,salary\nann,100\n")
    return "private/nb.ipynb"


class TestAnAuthorizerDenyingContents:
    @pytest.fixture
    def jp_server_config(self, jp_server_config):
        return {
            **jp_server_config,
            "ServerApp": {**jp_server_config["ServerApp"], "authorizer_class": NoContents},
        }

    async def test_the_manifest_is_refused(self, jp_fetch, fault_server, private_notebook):
        code, reply = await call(
            jp_fetch, "manifest", method="POST", body={"path": private_notebook}
        )
        assert code == 403
        assert "not allowed to read files" in reply["message"]

    async def test_submit_is_refused_and_nothing_is_sent(
        self, jp_fetch, fault_server, private_notebook
    ):
        code, _ = await call(jp_fetch, "jobs", method="POST", body={"path": private_notebook})
        assert code == 403
        assert fault_server.seen == []

    async def test_saving_an_output_is_refused(self, jp_fetch, fault_server):
        code, reply = await call(jp_fetch, "output", method="POST", body={"id": 7})
        assert code == 403
        assert "not allowed to change files" in reply["message"]
        assert fault_server.seen == []

    async def test_reverifying_a_saved_output_is_refused(self, jp_fetch, fault_server):
        code, _ = await call(
            jp_fetch, "attestation", "verify", method="POST", body={"path": "out.ipynb"}
        )
        assert code == 403

    async def test_listing_jobs_reads_no_file_and_stays_allowed(self, jp_fetch, fault_server):
        code, _ = await call(jp_fetch, "jobs")
        assert code == 200


class TestHiddenFilesNotAllowed:
    @pytest.fixture
    def jp_server_config(self, jp_server_config):
        return {**jp_server_config, "ContentsManager": {"allow_hidden": False}}

    @pytest.fixture
    def manatee_config(self, manatee_config):
        return {**manatee_config, "exclude": []}  # even without the default ".*" pattern

    async def test_a_notebook_in_a_hidden_folder_is_not_shipped(
        self, jp_fetch, fault_server, jp_root_dir
    ):
        write_notebook(jp_root_dir / ".ssh" / "nb.ipynb")
        (jp_root_dir / ".ssh" / "id_rsa").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
        code, reply = await call(jp_fetch, "jobs", method="POST", body={"path": ".ssh/nb.ipynb"})
        assert code == 404, reply
        assert "hidden" in reply["message"]
        assert fault_server.seen == []

    async def test_hidden_files_beside_a_notebook_are_left_out(
        self, jp_fetch, fault_server, jp_root_dir
    ):
        write_notebook(jp_root_dir / "work" / "nb.ipynb")
        (jp_root_dir / "work" / ".env").write_text("TOKEN=secret\n")
        code, reply = await call(
            jp_fetch, "manifest", method="POST", body={"path": "work/nb.ipynb"}
        )
        assert code == 200, reply
        assert ".env" not in {f["path"] for f in reply["files"]}


class TestHiddenFilesAllowed:
    @pytest.fixture
    def jp_server_config(self, jp_server_config):
        return {**jp_server_config, "ContentsManager": {"allow_hidden": True}}

    @pytest.fixture
    def manatee_config(self, manatee_config):
        return {**manatee_config, "exclude": []}

    async def test_an_operator_who_allows_hidden_files_gets_them_shipped(
        self, jp_fetch, fault_server, jp_root_dir
    ):
        """The control: the same folder as above, the policy now allowing hidden files."""
        write_notebook(jp_root_dir / "work" / "nb.ipynb")
        (jp_root_dir / "work" / ".env").write_text("TOKEN=secret\n")
        code, reply = await call(
            jp_fetch, "manifest", method="POST", body={"path": "work/nb.ipynb"}
        )
        assert code == 200, reply
        assert ".env" in {f["path"] for f in reply["files"]}
