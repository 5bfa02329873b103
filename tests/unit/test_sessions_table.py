"""The sessions table's keys are routed like the commands they come from."""

from consumers.sessions import session_key
from foundation.settings import Settings
from parkstream.worker import build_worker


def test_the_sessions_table_is_keyed_by_the_commands_topic_key_bytes():
    sessions = build_worker(Settings()).dispatcher.sessions
    reference = "ps-4f95cec15b97924100ba-1b9e496f7703cd3f9f17"
    serialized, _ = sessions.changelog_topic.prepare_key(reference, None)
    assert serialized == session_key(reference) == reference.encode()
