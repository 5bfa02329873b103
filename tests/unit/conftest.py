"""Unit tests run in their own directory: a worker built from default settings keeps its
table files under ``./parkstream-data`` (PARKSTREAM_DATA_DIR), here a temporary one."""

import pytest


@pytest.fixture(autouse=True)
def _own_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
