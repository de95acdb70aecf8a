"""The container image and the compose stack, built and run for real with podman.

The image registry cannot be reached from here, so the image is built on a
stand-in for its python base: Debian 12 bootstrapped from the Debian mirror
(``tests/image/make-base.sh``), passed as ``--build-arg BASE``. The compose
stack's postgres and prometheus images are stood in for the same way, by
Debian's packages (``tests/image/standins.Dockerfile``); Grafana has no Debian
package, so the stack runs without it. The tarballs are cached in
``~/.cache/loadgen-tests/`` (``$LOADGEN_TEST_CACHE``), keyed by the script, the
mirror and the packages, so only the first run pays for debootstrap. The image
is built every run, from scratch, in a podman store of its own that is deleted
afterwards: a cached layer must not hide a step that no longer builds, and
repeated runs must not pile images up in the machine's store.

Needs root (debootstrap, rootful podman), podman, runc, debootstrap and
podman-compose (``make test`` installs them: ``make system-deps``); without
them the tests skip with the reason (and fail under ``LOADGEN_REQUIRE_ALL``, as
in CI). Deselect locally with ``--deselect tests/test_image.py``: the first run
takes about 7 minutes, later ones about 3.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import time
import tomllib
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent / "image"
MAKE_BASE = HERE / "make-base.sh"
COMPOSE = ROOT / "docker-compose.benchmark.yml"
CACHE = Path(os.environ.get("LOADGEN_TEST_CACHE") or Path.home() / ".cache" / "loadgen-tests")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
IMAGE = "localhost/loadgen:local"  # the name the compose file gives it
#: What the compose stack's stand-ins are made of (Debian 12's versions).
SERVICE_PACKAGES = ("postgresql-15", "prometheus")

# The first run bootstraps Debian twice (~1.5 and ~2 min here) and builds
# (~3 min): far past the suite's 300 s default, which counts fixtures too.
pytestmark = pytest.mark.timeout(1200)


def _log(message: str) -> None:
    """Progress and figures, shown with ``-s`` or on a failure: the fixtures take minutes."""
    print(f"[test_image] {message}", flush=True)


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


# --- the engine --------------------------------------------------------------------


#: Why this machine needs a containers.conf of the test's own.
_CONTAINERS_CONF = """\
# Written by tests/test_image.py.
[containers]
# For root, podman raises the open-files and processes limits past what a
# sandboxed host lets any process have (setrlimit: EPERM): start with ours.
default_ulimits = ["nofile={nofile}", "nproc=4096:4096"]
[engine]
{runtime}
"""
#: crun (Debian 12's default) refuses to start a container, also for a build's
#: RUN steps, where cgroups v1 and v2 are mounted side by side ("cgroups in
#: hybrid mode not supported"); runc does not.
_RUNC = 'runtime = "runc"'


@dataclass(frozen=True)
class Podman:
    """podman, and podman-compose through it, on a store and configuration of the test's own."""

    exe: str
    root: Path

    @classmethod
    def create(cls, exe: str, root: Path) -> Podman:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        runtime = _RUNC if shutil.which("runc") else ""
        (root / "containers.conf").write_text(_CONTAINERS_CONF.format(nofile=f"{soft}:{hard}", runtime=runtime))
        (root / "storage.conf").write_text(
            f'[storage]\ndriver = "overlay"\ngraphroot = "{root}/storage"\nrunroot = "{root}/run"\n')
        return cls(exe, root)

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "CONTAINERS_CONF": str(self.root / "containers.conf"),
                "CONTAINERS_STORAGE_CONF": str(self.root / "storage.conf")}

    def __call__(self, *args: str, timeout: float = 120, check: bool = True,
                 env: dict[str, str] | None = None, exe: str | None = None) -> subprocess.CompletedProcess[str]:
        """``podman ARGS`` (or ``exe ARGS``, as podman-compose), failing the test unless ``check`` is off."""
        proc = subprocess.run([exe or self.exe, *args], capture_output=True, text=True, timeout=timeout,
                              env={**self.env, **(env or {})})
        if check and proc.returncode != 0:
            pytest.fail(f"{Path(exe or self.exe).name} {' '.join(args[:3])} exited {proc.returncode}:\n"
                        f"{_tail(proc.stdout + proc.stderr)}")
        return proc

    def logged(self, log: Path, *args: str, timeout: float) -> None:
        """A long podman command, its output to ``log`` (shown on failure)."""
        with log.open("w") as out:
            proc = subprocess.run([self.exe, *args], stdout=out, stderr=subprocess.STDOUT, timeout=timeout,
                                  env=self.env)
        if proc.returncode != 0:
            pytest.fail(f"podman {' '.join(args[:2])} exited {proc.returncode}:\n{_tail(log.read_text(), 60)}")


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    exe = shutil.which("podman")
    if exe is None:
        pytest.skip("no container engine: podman is not installed (make test installs it with apt-get as root)")
    if shutil.which("debootstrap") is None:
        pytest.skip("debootstrap is not installed (make test installs it), needed for the stand-in base image")
    if os.geteuid() != 0:
        pytest.skip("needs root: debootstrap and rootful podman build the stand-in base")
    engine = Podman.create(exe, tmp_path_factory.mktemp("podman"))
    try:
        yield engine
    finally:
        engine("rm", "--all", "--force", timeout=300, check=False)
        engine("rmi", "--all", "--force", timeout=300, check=False)
        shutil.rmtree(engine.root, ignore_errors=True)


# --- stand-in bases ----------------------------------------------------------------------


def _apt_mirror() -> str:
    """The Debian mirror apt uses here (deb822 or one-line sources), else deb.debian.org."""
    sources = sorted(Path("/etc/apt").glob("sources.list.d/*.sources")) + [Path("/etc/apt/sources.list")]
    for path in sources:
        text = path.read_text() if path.is_file() else ""
        for stanza in text.split("\n\n"):
            if re.search(r"^Suites:.*\bbookworm\b", stanza, re.M):
                m = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
                if m and not m.group(1).rstrip("/").endswith("-security"):
                    return m.group(1)
        m = re.search(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+bookworm\s", text, re.M)
        if m:
            return m.group(1)
    return DEFAULT_MIRROR


def _debian(podman: Podman, name: str, packages: tuple[str, ...] = ()) -> str:
    """Debian 12 with ``packages``, imported as ``localhost/NAME``; debootstrapped once, then cached."""
    mirror = _apt_mirror()
    key = hashlib.sha256("\0".join([MAKE_BASE.read_text(), mirror, *packages]).encode()).hexdigest()[:16]
    tarball = CACHE / f"{name}-{key}.tar"
    if not tarball.is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        _log(f"debootstrapping Debian 12 {' '.join(packages)} from {mirror} into {tarball} (cached for later runs)")
        log = tarball.with_suffix(".log")
        with log.open("w") as out:
            proc = subprocess.run(["sh", str(MAKE_BASE), str(tarball), mirror, *packages],
                                  stdout=out, stderr=subprocess.STDOUT, timeout=900)
        if proc.returncode != 0:
            pytest.fail(f"{MAKE_BASE.name} exited {proc.returncode}:\n{_tail(log.read_text())}")
    image = f"localhost/{name}:bookworm"
    podman("import", str(tarball), image, timeout=300)
    return image


@pytest.fixture(scope="module")
def base(podman: Podman) -> str:
    return _debian(podman, "loadgen-test-base")


@pytest.fixture(scope="module")
def image(podman: Podman, base: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The Dockerfile built on the stand-in base, with the machine's CA bundle for pip.

    ``--format docker`` keeps ``HEALTHCHECK NONE``, which the OCI format drops.
    """
    started = time.monotonic()
    podman.logged(tmp_path_factory.mktemp("build") / "build.log",
                  "build", "--format", "docker", "--build-arg", f"BASE={base}",
                  "-v", "/etc/ssl/certs:/etc/ssl/certs:ro", "-t", IMAGE, str(ROOT), timeout=900)
    size = int(podman("image", "inspect", "--format", "{{.Size}}", IMAGE).stdout.strip())
    _log(f"built {IMAGE} in {time.monotonic() - started:.0f} s, {size / 1e6:.0f} MB")
    return IMAGE


# --- the image -------------------------------------------------------------------------


def test_image_reports_its_version_and_runs_as_the_loadgen_user(podman: Podman, image: str, base: str) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    proc = podman("run", "--rm", image, "--version")
    assert proc.stdout.strip() == f"loadgen {version}"
    config = json.loads(podman("image", "inspect", "--format", "{{json .Config}}", image).stdout)
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["loadgen"]
    assert config["Labels"]["org.opencontainers.image.base.name"] == base


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.3)


@pytest.fixture
def demo_in_image(podman: Podman, image: str) -> Iterator[str]:
    """``loadgen demo-target`` in a container on the host's network, on a free port of 127.0.0.1."""
    port = _free_port()
    name = f"loadgen-demo-{port}"
    podman("run", "--detach", "--name", name, "--network", "host", "--read-only",
           image, "demo-target", "--host", "127.0.0.1", "--port", str(port))
    try:
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_for(f"{url}/health", 30)
        except OSError as exc:
            logs = podman("logs", name, check=False)
            pytest.fail(f"the demo target in the image did not answer: {exc}\n{_tail(logs.stdout + logs.stderr)}")
        yield url
    finally:
        podman("rm", "--force", "--time", "2", name, check=False)


def test_image_runs_a_scenario_against_the_demo_target_in_the_image(
        podman: Podman, image: str, demo_in_image: str, tmp_path: Path) -> None:
    """With a read-only root filesystem, as the Kubernetes Job runs it."""
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o777)  # the image's user (uid 10001) writes the summary
    proc = podman(
        "run", "--rm", "--network", "host", "--read-only",
        "-v", f"{ROOT / 'scenarios'}:/work/scenarios:ro", "-v", f"{out}:/out",
        image, "run", "scenarios/api.py", "--host", demo_in_image, "--users", "2", "--run-time", "3s",
        "--db", "none", "--summary-json", "/out/summary.json", "--quiet",
        timeout=120, check=False)
    assert proc.returncode == 0, f"loadgen run in the image exited {proc.returncode}:\n{_tail(proc.stdout + proc.stderr)}"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["requests"] > 0 and summary["errors"] == 0, summary
    assert summary["status"] == "completed" and summary["exit_code"] == 0
    assert summary["host"] == demo_in_image


# --- the compose stack ---------------------------------------------------------------------


PROJECT = "loadgen-imagetest"


def _compose_doc() -> dict[str, Any]:
    """The compose file as loaded: YAML, so untyped."""
    yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read the compose file (test extra)")
    doc: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return doc


def _qualified(image: str) -> str:
    """A short image name as podman resolves it on Docker Hub: where a stand-in must be tagged."""
    first = image.split("/")[0]
    if "/" not in image:
        return f"docker.io/library/{image}"
    return image if "." in first or ":" in first or first == "localhost" else f"docker.io/{image}"


def _stack_file(into: Path) -> Path:
    """docker-compose.benchmark.yml as this machine can run it: what differs, and why."""
    import yaml

    doc = _compose_doc()
    services = doc["services"]
    del services["grafana"]  # no Debian package to stand in for grafana/grafana: unproven here
    for svc in services.values():
        # Checked from inside the stack: the host's 5432 is the tests' own PostgreSQL.
        svc.pop("ports", None)
        # The image fixture built it, under the name the file gives it.
        svc.pop("build", None)
        svc["volumes"] = [re.sub(r"^\./", f"{ROOT}/", v) for v in svc.get("volumes", [])]
    out = into / "compose.yml"
    out.write_text(yaml.safe_dump(doc, sort_keys=False))
    return out


@pytest.fixture(scope="module")
def standins(podman: Podman, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The stack's postgres and prometheus images, built from Debian's packages, under the stack's names."""
    services = _compose_doc()["services"]
    base = _debian(podman, "loadgen-test-services", SERVICE_PACKAGES)
    logs = tmp_path_factory.mktemp("standins")
    for target in ("postgres", "prometheus"):
        podman.logged(logs / f"{target}.log", "build", "--format", "docker", "--build-arg", f"BASE={base}",
                      "--target", target, "-t", _qualified(services[target]["image"]),
                      "-f", str(HERE / "standins.Dockerfile"), str(HERE), timeout=300)


@dataclass(frozen=True)
class Stack:
    """The compose project, run by podman-compose on the test's podman."""

    podman: Podman
    compose: str
    file: Path

    def __call__(self, *args: str, timeout: float = 300, check: bool = True,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return self.podman("-p", PROJECT, "-f", str(self.file), *args, exe=self.compose, timeout=timeout,
                           check=check, env=env)

    def exec(self, service: str, *args: str) -> str:
        return self.podman("exec", f"{PROJECT}_{service}_1", *args).stdout

    def wait_healthy(self, service: str, seconds: float = 90) -> None:
        """The compose file's health check, run until it passes: nothing schedules it without systemd."""
        deadline = time.monotonic() + seconds
        while True:
            proc = self.podman("healthcheck", "run", f"{PROJECT}_{service}_1", check=False)
            if proc.returncode == 0:
                return
            if time.monotonic() > deadline:
                logs = self.podman("logs", f"{PROJECT}_{service}_1", check=False)
                pytest.fail(f"{service} never became healthy: {proc.stdout}{proc.stderr}\n"
                            f"{_tail(logs.stdout + logs.stderr)}")
            time.sleep(1)


@pytest.fixture(scope="module")
def stack(podman: Podman, image: str, standins: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    compose = shutil.which("podman-compose")
    if compose is None:
        pytest.skip("podman-compose is not installed (make test installs it with apt-get as root)")
    running = Stack(podman, compose, _stack_file(tmp_path_factory.mktemp("stack")))
    try:
        running("up", "-d", "postgres", "prometheus", "demo-target")
        for service in ("postgres", "demo-target"):
            running.wait_healthy(service)
        yield running
    finally:
        running("down", "-v", check=False)
        # Networks are the machine's (CNI configuration), not the store's: podman-compose 1.0 leaves its own.
        podman("network", "rm", "--force", f"{PROJECT}_default", check=False)


def _prometheus(stack: Stack, query: str) -> list[dict[str, Any]]:
    """A PromQL query, from inside the stack (the demo target's container has Python)."""
    url = "http://prometheus:9090/api/v1/query?" + urllib.parse.urlencode({"query": query})
    fetch = "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())"
    result: list[dict[str, Any]] = json.loads(stack.exec("demo-target", "python", "-c", fetch, url))["data"]["result"]
    return result


def test_compose_stack_stores_a_run_in_postgres_while_prometheus_scrapes_it(stack: Stack) -> None:
    pg = _compose_doc()["services"]["postgres"]["environment"]
    proc = stack("run", "--rm", "loadgen", env={"RUN_TIME": "5s", "USERS": "2", "APP_VERSION": "image-test"},
                 check=False)
    assert proc.returncode == 0, f"the loadgen service exited {proc.returncode}:\n{_tail(proc.stdout + proc.stderr)}"
    row = stack.exec("postgres", "env", f"PGPASSWORD={pg['POSTGRES_PASSWORD']}", "psql", "-h", "127.0.0.1",
                     "-U", pg["POSTGRES_USER"], "-d", pg["POSTGRES_DB"], "-tA", "-c",
                     "SELECT status, requests, errors FROM runs WHERE app_version = 'image-test'")
    status, requests, errors = row.strip().split("|")
    assert status == "completed" and int(requests) > 0 and int(errors) == 0, row
    up = {r["metric"]["job"]: r["value"][1] for r in _prometheus(stack, "max_over_time(up[10m])")}
    assert up.get("demo-target") == "1", up
    assert up.get("loadgen") == "1", f"Prometheus never scraped the loadgen service: {up}"
