"""The container image, built by ``make image`` and run as the Helm chart runs it.

No container registry is needed: ``make image-base`` makes a Debian bookworm base with
mmdebstrap (from the Debian mirror) and imports it into a buildah storage of this test's own;
``make image`` builds the Dockerfile on it. Each container then runs under buildah's chroot
isolation the way the chart's pods do: the image's own user (the chart's ``runAsUser``), the
root filesystem read-only (``readOnlyRootFilesystem``: a read-only bind mount of the mounted
image root), and only ``/tmp`` and the worker's data dir writable (the chart's emptyDir and the
worker's data volume).

buildah's chroot isolation shares the host's network, so the processes in the image listen
on, and reach the test broker at, 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from foundation.broker import free_port, wait_for_port
from tests.conftest import CLIENT, VENDOR_TOKEN
from tests.e2e.conftest import wait_until
from tests.support.examples import PERMIT_PUSH_EXAMPLE

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "parkstream"
VALUES = yaml.safe_load((CHART / "values.yaml").read_text())
UID = VALUES["podSecurityContext"]["runAsUser"]
GID = VALUES["podSecurityContext"]["runAsGroup"]
DATA_DIR = VALUES["worker"]["dataDir"]
BASE = "localhost/parkstream-test-base:bookworm"
IMAGE = "localhost/parkstream:test"

_missing = [tool for tool in ("buildah", "mmdebstrap") if shutil.which(tool) is None]
if _missing:
    pytest.skip(
        f"{' and '.join(_missing)} not installed: `make system-deps` installs them as root "
        "(Debian packages buildah, mmdebstrap)",
        allow_module_level=True,
    )
if os.geteuid() != 0:
    pytest.skip(
        "the image test runs as root: mmdebstrap's root mode and the read-only bind mount "
        "of the image root need it",
        allow_module_level=True,
    )


def chart_command(component: str) -> list[str]:
    """The ``command`` of a component's container in the chart (in its Deployment; the
    worker's is in its StatefulSet)."""
    for template in sorted((CHART / "templates" / component).glob("*.yaml")):
        found = re.search(r"^\s*command: (\[.*\])$", template.read_text(), re.M)
        if found:
            return json.loads(found.group(1))
    raise AssertionError(f"no command in the chart's {component} templates")


def run(argv: list[str], timeout: float = 600, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kwargs)


def checked(argv: list[str], timeout: float = 600) -> str:
    result = run(argv, timeout)
    assert result.returncode == 0, f"{argv} exited {result.returncode}:\n{result.stderr[-4000:]}"
    return result.stdout.strip()


@dataclass
class Image:
    buildah: list[str]
    name: str

    def config(self) -> dict:
        """The OCI image config: what a container engine or the kubelet runs it with."""
        inspected = checked([*self.buildah, "inspect", "--type", "image", self.name])
        return json.loads(inspected)["OCIv1"]["config"]


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Image]:
    """``make image-base image`` into a buildah storage of the test's own, removed after."""
    storage = tmp_path_factory.mktemp("buildah")
    buildah = [
        "buildah",
        "--root",
        f"{storage}/root",
        "--runroot",
        f"{storage}/run",
        "--storage-driver",
        "vfs",
    ]
    # No make variables from an outer `make test`, and none of this machine's pip settings:
    # the build must not need them (buildah passes no host environment into RUN steps anyway).
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")
        and (k == "PIP_CERT" or not k.startswith("PIP_"))
    }
    log = storage / "make.log"
    try:
        with log.open("w") as out:
            made = subprocess.run(
                [
                    "make",
                    "-C",
                    str(REPO),
                    "image-base",
                    "image",
                    f"BUILDAH={' '.join(buildah)}",
                    f"DEBIAN_BASE={BASE}",
                    f"BASE_IMAGE={BASE}",
                    f"IMAGE={IMAGE}",
                ],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=840,
            )
        assert made.returncode == 0, f"make image failed:\n{log.read_text()[-6000:]}"
        yield Image(buildah, IMAGE)
    finally:
        run([*buildah, "rm", "--all"], timeout=120)
        shutil.rmtree(storage, ignore_errors=True)


@dataclass
class Container:
    """One working container of the image with the chart's filesystem: read-only but for the
    emptyDirs at /tmp and the data dir (host directories here)."""

    buildah: list[str]
    id: str
    root: Path
    tmp: Path
    data: Path

    def argv(self, command: list[str], env: dict[str, str] | None = None) -> list[str]:
        flags = [f"--env={k}={v}" for k, v in (env or {}).items()]
        return [
            *self.buildah,
            "run",
            "--isolation",
            "chroot",
            "--volume",
            f"{self.tmp}:/tmp",
            "--volume",
            f"{self.data}:{DATA_DIR}",
            *flags,
            self.id,
            "--",
            *command,
        ]

    def run(self, command: list[str], env: dict[str, str] | None = None):
        return run(self.argv(command, env), timeout=120)


@contextmanager
def chart_container(image: Image, workdir: Path) -> Iterator[Container]:
    buildah = image.buildah
    ctr = checked([*buildah, "from", "--quiet", image.name])
    root = Path(checked([*buildah, "mount", ctr]))
    # The emptyDirs as the kubelet makes them with the chart's fsGroup: mode 0777, setgid,
    # group GID.
    tmp, data = workdir / "tmp", workdir / "data"
    for empty_dir in (tmp, data):
        empty_dir.mkdir(parents=True)
        os.chown(empty_dir, 0, GID)
        empty_dir.chmod(0o2777)
    # The root, bound onto itself and made read-only. /run itself stays writable by root:
    # buildah binds its /run/.containerenv there for each run and removes it after; the
    # processes run as UID, to whom /run is closed, and /run's own subdirectories (the
    # world-writable /run/lock) are read-only too.
    bound = [root, root / "run"]
    read_only = [root, *(p for p in (root / "run").iterdir() if p.is_dir() and not p.is_symlink())]
    mounted: list[Path] = []
    try:
        for path in dict.fromkeys(bound + read_only):
            checked(["mount", "--bind", str(path), str(path)])
            mounted.append(path)
        for path in read_only:
            checked(["mount", "-o", "remount,bind,ro", str(path)])
        yield Container(buildah, ctr, root, tmp, data)
    finally:
        for path in reversed(mounted):
            run(["umount", str(path)], timeout=60)
        run([*buildah, "rm", ctr], timeout=120)


class Server:
    """A long-running command in a container, stopped (its whole process group) at exit."""

    def __init__(self, container: Container, command: list[str], env: dict[str, str], log: Path):
        self.log_path = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                container.argv(command, env),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_for_port(self, port: int, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc.poll() is None, f"exited {self.proc.returncode}:\n{self.log()}"
            try:
                wait_for_port("127.0.0.1", port, timeout=0.5)
                return
            except TimeoutError:
                assert time.monotonic() < deadline, f"port {port} never opened:\n{self.log()}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@pytest.fixture(scope="module")
def container(image: Image, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    """One container for the tests that run one command each (a working container costs a
    copy of the whole image with buildah's vfs storage)."""
    with chart_container(image, tmp_path_factory.mktemp("pod")) as running:
        yield running


def test_image_runs_as_the_charts_user_with_parkstream_as_entrypoint(image):
    config = image.config()
    assert config["Entrypoint"] == ["parkstream"]
    assert config.get("User") == f"{UID}:{GID}"


def test_parkstream_help_through_the_entrypoint(image, container):
    result = container.run([*image.config()["Entrypoint"], "--help"])
    assert result.returncode == 0, result.stderr
    assert "usage: parkstream" in result.stdout
    for command in ("gateway", "worker", "sandbox"):
        assert command in result.stdout


# Every place the processes could write; only the chart's writable volumes may take a file.
WRITE_PROBE = """
import json, os, sys
answers = {}
for directory in sys.argv[1:]:
    try:
        with open(os.path.join(directory, "probe"), "w") as handle:
            handle.write("x")
        answers[directory] = "written"
    except OSError as exc:
        answers[directory] = exc.strerror
print(json.dumps({"uid": os.getuid(), "gid": os.getgid(), "home": os.environ["HOME"],
                  "answers": answers}))
"""


def test_only_tmp_and_the_data_dir_are_writable_as_uid_10001(container):
    places = ["/", "/etc", "/opt/parkstream/bin", "/var/tmp", "/run", "/run/lock", "/tmp", DATA_DIR]
    result = container.run(["python3", "-c", WRITE_PROBE, *places])
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout)
    assert (probe["uid"], probe["gid"]) == (UID, GID)
    assert probe["home"] == "/tmp"
    assert probe["answers"].pop("/tmp") == "written"
    assert probe["answers"].pop(DATA_DIR) == "written"
    # /run is writable only by root in the image; the others are on the read-only root.
    assert probe["answers"] == {
        place: "Permission denied" if place == "/run" else "Read-only file system"
        for place in probe["answers"]
    }


# Every module the three processes import from the image's venv has its bytecode there, so
# nothing is compiled (and nothing would be written) at start on a read-only root.
BYTECODE_PROBE = """
import importlib.util, json, sys
import parkstream.cli, parkstream.worker, producers.gateway, sandbox.app, streams.planning
venv = [m.__file__ for m in list(sys.modules.values())
        if getattr(m, "__file__", None) and m.__file__.startswith("/opt/parkstream/")
        and m.__file__.endswith(".py")]
missing = [f for f in venv if not __import__("os").path.exists(importlib.util.cache_from_source(f))]
print(json.dumps({"modules": len(venv), "missing": missing}))
"""


def test_every_module_parkstream_loads_has_its_bytecode_in_the_image(container):
    result = container.run(["python3", "-c", BYTECODE_PROBE])
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout)
    assert probe["modules"] > 100
    assert probe["missing"] == []


def test_sandbox_answers_healthz_on_a_read_only_root(container, tmp_path):
    port = free_port()
    sandbox = Server(
        container,
        chart_command("sandbox"),
        {"PARKSTREAM_SANDBOX_PORT": str(port)},
        tmp_path / "sandbox.log",
    )
    try:
        sandbox.wait_for_port(port)
        answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
        assert answer.status_code == 200, answer.text
    finally:
        sandbox.stop()


async def test_a_push_through_the_images_gateway_and_worker_reaches_its_sandbox(
    image, stack_env, tmp_path
):
    """All three workloads' commands, each in its own read-only container, as in the chart."""
    env = {
        **stack_env,
        "PARKSTREAM_DATA_DIR": DATA_DIR,
        "PARKSTREAM_GATEWAY_HOST": "0.0.0.0",
        "PARKSTREAM_CONTROLLER_URL": f"http://127.0.0.1:{stack_env['PARKSTREAM_SANDBOX_PORT']}",
    }
    servers: list[Server] = []
    with (
        chart_container(image, tmp_path / "sandbox-pod") as sandbox_pod,
        chart_container(image, tmp_path / "worker-pod") as worker_pod,
        chart_container(image, tmp_path / "gateway-pod") as gateway_pod,
    ):
        try:
            for component, pod, port in (
                ("sandbox", sandbox_pod, env["PARKSTREAM_SANDBOX_PORT"]),
                ("worker", worker_pod, env["PARKSTREAM_WORKER_WEB_PORT"]),
                ("gateway", gateway_pod, env["PARKSTREAM_GATEWAY_PORT"]),
            ):
                server = Server(pod, chart_command(component), env, tmp_path / f"{component}.log")
                servers.append(server)
                server.wait_for_port(int(port))

            async with httpx.AsyncClient(timeout=10) as http:
                gateway = f"http://127.0.0.1:{env['PARKSTREAM_GATEWAY_PORT']}"
                worker = f"http://127.0.0.1:{env['PARKSTREAM_WORKER_WEB_PORT']}"
                sandbox = f"http://127.0.0.1:{env['PARKSTREAM_SANDBOX_PORT']}"
                for url in (gateway, worker, sandbox):
                    assert (await http.get(f"{url}/healthz")).status_code == 200
                answer = await http.post(
                    f"{gateway}/api/{CLIENT}/v1/permits/push",
                    json={"apiToken": VENDOR_TOKEN, **PERMIT_PUSH_EXAMPLE},
                )
                assert answer.status_code == 200, answer.text

                async def applied():
                    permits = (await http.get(f"{sandbox}/_sandbox/permits")).json()["permits"]
                    return permits

                assert await wait_until(applied, timeout=90)
        except BaseException:
            for server in servers:
                print(f"--- {server.log_path.name}\n{server.log()[-3000:]}")
            raise
        finally:
            for server in reversed(servers):
                server.stop()
        # The worker kept its Faust files in the data dir (the chart's data volume), nowhere else.
        assert (worker_pod.data / "worker").is_dir()
