"""``creator_mapping = 'safe'`` tells a user once that their creator changed.

Through the real routes of a Jupyter server whose identity provider names the user as a
hub would (an e-mail address): ``GET manatee/config`` carries ``creator_notice`` with both
names until ``DELETE manatee/config/creator-notice``, and the dismissal outlives the
manager (it is kept in ``state_dir``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from jupyter_server.auth.identity import IdentityProvider, User

from jupyterlab_manatee.config import ManateeConfig
from jupyterlab_manatee.jobs.creator_notice import NOTICES_FILE, CreatorNotices, changed_creator
from tests.conftest import call

HUB_NAME = "alice@example.org"
MAPPED = "alice-example-org-7a64ad"


class HubLikeIdentity(IdentityProvider):
    """The token's user, named as JupyterHub names a Google OAuth user without a domain."""

    async def get_user(self, handler):
        user = await super().get_user(handler)
        return None if user is None else User(HUB_NAME)


@pytest.fixture
def manatee_config(manatee_config, monkeypatch):
    monkeypatch.delenv("MANATEE_CREATOR", raising=False)
    return {**manatee_config, "creator": None, "creator_mapping": "safe"}


@pytest.fixture
def jp_server_config(jp_server_config):
    return {
        **jp_server_config,
        "ServerApp": {
            **jp_server_config["ServerApp"],
            "identity_provider_class": HubLikeIdentity,
        },
    }


def test_the_mapped_name_is_the_one_the_notice_names():
    config = ManateeConfig(creator_mapping="safe")
    assert changed_creator(config, HUB_NAME) == {"old": HUB_NAME, "new": MAPPED}


async def test_the_config_route_names_the_old_and_the_new_creator(jp_fetch):
    status, reply = await call(jp_fetch, "config")
    assert status == 200
    assert reply["creator"] == MAPPED
    assert reply["creator_notice"] == {"old": HUB_NAME, "new": MAPPED}


async def test_the_notice_stays_until_dismissed(jp_fetch):
    await call(jp_fetch, "config")
    _, reply = await call(jp_fetch, "config")
    assert reply["creator_notice"] == {"old": HUB_NAME, "new": MAPPED}


async def test_a_dismissed_notice_is_gone_from_the_config_route(jp_fetch):
    status, reply = await call(jp_fetch, "config", "creator-notice", method="DELETE")
    assert (status, reply["creator_notice"]) == (200, None)
    _, reply = await call(jp_fetch, "config")
    assert reply["creator_notice"] is None
    assert reply["creator"] == MAPPED


async def test_the_dismissal_is_kept_in_the_state_dir(jp_fetch, manatee_config):
    await call(jp_fetch, "config", "creator-notice", method="DELETE")
    saved = json.loads((Path(manatee_config["state_dir"]) / NOTICES_FILE).read_text())
    assert saved == {"dismissed": [{"old": HUB_NAME, "new": MAPPED}]}


async def test_a_dismissal_outlives_the_server(jp_fetch, manatee_config):
    """A new manager (a restarted server) reads the dismissal from state_dir."""
    await call(jp_fetch, "config", "creator-notice", method="DELETE")
    config = ManateeConfig(**manatee_config)
    notices = CreatorNotices(manatee_config["state_dir"], logging.getLogger("test"))
    assert notices.pending(config, HUB_NAME) is None


def test_a_name_the_mapping_keeps_gets_no_notice(tmp_path):
    notices = CreatorNotices(tmp_path, logging.getLogger("test"))
    assert notices.pending(ManateeConfig(creator_mapping="safe"), "alice") is None


def test_a_name_the_api_refused_as_is_gets_no_notice(tmp_path):
    """No job can exist under a name of 32 characters: nothing vanished."""
    notices = CreatorNotices(tmp_path, logging.getLogger("test"))
    assert notices.pending(ManateeConfig(creator_mapping="safe"), "a" * 32) is None


def test_without_the_safe_mapping_there_is_no_notice(tmp_path):
    notices = CreatorNotices(tmp_path, logging.getLogger("test"))
    assert notices.pending(ManateeConfig(creator_mapping="as-is"), HUB_NAME) is None


def test_a_dismissal_of_another_pair_does_not_hide_this_one(tmp_path):
    (tmp_path / NOTICES_FILE).write_text(
        json.dumps({"dismissed": [{"old": "bob@example.org", "new": "bob-example-org-000000"}]})
    )
    notices = CreatorNotices(tmp_path, logging.getLogger("test"))
    config = ManateeConfig(creator_mapping="safe")
    assert notices.pending(config, HUB_NAME) == {"old": HUB_NAME, "new": MAPPED}


def test_an_unreadable_dismissal_file_is_set_aside_and_the_notice_shows(tmp_path, caplog):
    (tmp_path / NOTICES_FILE).write_text('{"dismissed": [{"old": 1}]}')
    notices = CreatorNotices(tmp_path, logging.getLogger("test"))
    config = ManateeConfig(creator_mapping="safe")
    assert notices.pending(config, HUB_NAME) == {"old": HUB_NAME, "new": MAPPED}
    assert not (tmp_path / NOTICES_FILE).exists()
    assert [p.name.startswith(f"{NOTICES_FILE}.corrupt-") for p in tmp_path.iterdir()] == [True]
