"""A request that does not arrive in time (PARKSTREAM_GATEWAY_READ_TIMEOUT_SECONDS) is cut off:
``408`` and the connection closed, so a stalled vendor cannot hold a connection open
indefinitely. Raw sockets against a ``parkstream gateway`` process."""

from __future__ import annotations

import json
import socket
import time

import pytest

from tests.conftest import CLIENT, VENDOR_TOKEN
from tests.support.examples import PERMIT_PUSH_EXAMPLE

BOUND = 2  # seconds, the setting under test
# How long a test waits for the cut before it fails: well past the bound, so the test never
# depends on how fast a shared machine is, and still fails if nothing cuts the connection.
PATIENCE = BOUND + 20

BODY = json.dumps({"apiToken": VENDOR_TOKEN, **PERMIT_PUSH_EXAMPLE}).encode()
HEAD = (
    f"POST /api/{CLIENT}/v1/permits/push HTTP/1.1\r\n"
    "Host: gateway\r\n"
    "Content-Type: application/json\r\n"
    f"Content-Length: {len(BODY)}\r\n"
    "\r\n"
).encode()


@pytest.fixture
def gateway_port(stack_env, start_process) -> int:
    env = {**stack_env, "PARKSTREAM_GATEWAY_READ_TIMEOUT_SECONDS": str(BOUND)}
    port = int(env["PARKSTREAM_GATEWAY_PORT"])
    start_process("gateway", env, port)
    return port


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=PATIENCE)
    sock.settimeout(PATIENCE)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the gateway sends until it closes; ``socket.timeout`` if it never does."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def read_answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP answer (status, headers, body) read from a kept-alive connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    while len(body) < int(headers["content-length"]):
        body += sock.recv(65536)
    return int(status_line.split()[1]), headers, body


def assert_cut_with_408(received: bytes) -> None:
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), received
    assert b"connection: close" in head.lower()
    assert json.loads(body) == {
        "status": "error",
        "message": f"Request not received in time: send headers and body within {BOUND} s.",
    }


def test_a_body_that_stalls_halfway_gets_408_and_the_connection_is_closed(gateway_port):
    with connect(gateway_port) as sock:
        sock.sendall(HEAD + BODY[: len(BODY) // 2])
        assert_cut_with_408(read_until_closed(sock))


def test_headers_that_stall_halfway_get_408_and_the_connection_is_closed(gateway_port):
    with connect(gateway_port) as sock:
        sock.sendall(HEAD[: len(HEAD) // 2])
        assert_cut_with_408(read_until_closed(sock))


def test_a_connection_that_sends_nothing_is_closed_without_an_answer(gateway_port):
    with connect(gateway_port) as sock:
        assert read_until_closed(sock) == b""


def test_an_idle_kept_alive_connection_is_not_cut_between_requests(gateway_port):
    # The bound is on reading one request, not on a connection's life between requests.
    with connect(gateway_port) as sock:
        sock.sendall(HEAD + BODY)
        assert read_answer(sock)[0] == 200
        time.sleep(BOUND * 1.5)
        sock.sendall(HEAD + BODY)
        assert read_answer(sock)[0] == 200


def test_a_body_sent_in_pieces_within_the_bound_is_answered(gateway_port):
    with connect(gateway_port) as sock:
        sock.sendall(HEAD)
        for start in range(0, len(BODY), 40):
            sock.sendall(BODY[start : start + 40])
            time.sleep(0.02)
        status, _, body = read_answer(sock)
        assert status == 200, body
