"""The Dockerfile, read without a Docker engine: pinned base image, non-root user, installed
from the lock file with nothing fetched outside it (uv by hash, our build backend locked), a
health check, no pip at run time, and a stage per service whose command exists."""

from __future__ import annotations

import fnmatch
import http.server
import json
import os
import re
import shlex
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy.support import ROOT, SERVICES

DOCKERFILE = ROOT / "Dockerfile"
MAKEFILE = ROOT / "Makefile"
WORKSPACE = ("shared", *(f"services/{service}" for service in SERVICES))
SHA256 = re.compile(r"^--hash=sha256:[0-9a-f]{64}$")
# An exact version tag (python:3.11.14-slim-bookworm) or a digest.
PINNED = re.compile(r"^[\w./-]+(:[\w.-]*\d+\.\d+\.\d+[\w.-]*)?(@sha256:[0-9a-f]{64})?$")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def last(self, instruction: str) -> str | None:
        values = [value for name, value in self.instructions if name == instruction]
        return values[-1] if values else None


def joined_lines(lines: list[str]) -> list[str]:
    """Lines ending in a backslash joined with the next; blank lines dropped."""
    logical: list[str] = []
    current = ""
    for line in lines:
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        current += line
        if current.strip():
            logical.append(current.strip())
        current = ""
    return logical


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    # A Dockerfile comment is a whole line, and may sit between continued lines.
    lines = [line for line in text.splitlines() if not line.strip().startswith("#")]
    parsed = []
    for line in joined_lines(lines):
        name, _, arguments = line.partition(" ")
        parsed.append((name.upper(), arguments.strip()))
    return parsed


def parse() -> tuple[dict[str, str], list[Stage]]:
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for name, arguments in instructions(DOCKERFILE.read_text()):
        if name == "FROM":
            parts = arguments.split()
            parts = [p for p in parts if not p.startswith("--platform")]
            alias = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(base=parts[0], name=alias))
        elif name == "ARG" and not stages:
            key, _, default = arguments.partition("=")
            global_args[key] = default
        elif stages:
            stages[-1].instructions.append((name, arguments))
    return global_args, stages


def resolve(image: str, arguments: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: arguments[m.group(1)], image)


def test_every_base_image_is_pinned_to_an_exact_version_or_digest() -> None:
    arguments, stages = parse()
    names = {stage.name for stage in stages if stage.name}
    external = [resolve(s.base, arguments) for s in stages if s.base not in names]
    assert external, "no base image found"
    for image in external:
        assert ":latest" not in image
        assert PINNED.match(image) and (":" in image or "@" in image), f"{image} is not pinned"


def final_stages() -> list[Stage]:
    """The default target and every per-service target."""
    _, stages = parse()
    return [stages[-1], *(s for s in stages if s.name in SERVICES)]


def effective_user(stage: Stage, stages: list[Stage]) -> str | None:
    user = stage.last("USER")
    if user is None:
        parent = next((s for s in stages if s.name == stage.base), None)
        return effective_user(parent, stages) if parent else None
    return user


def test_the_images_run_as_a_non_root_user() -> None:
    _, stages = parse()
    for stage in final_stages():
        user = effective_user(stage, stages)
        assert user is not None, f"stage {stage.name or '(default)'} sets no USER"
        assert user.split(":")[0] not in ("root", "0"), f"stage {stage.name} runs as {user}"


def test_dependencies_come_from_the_lock_file_without_dev_tools() -> None:
    _, stages = parse()
    build = next(s for s in stages if s.name == "build")
    syncs = [arguments for name, arguments in build.instructions if "uv sync" in arguments]
    assert syncs
    for command in syncs:
        assert "--frozen" in command
        assert "--no-dev" in command


def test_services_listen_on_every_interface() -> None:
    _, stages = parse()
    runtime = next(s for s in stages if s.name == "runtime")
    env = " ".join(value for name, value in runtime.instructions if name == "ENV")
    assert "HTTP_HOST=0.0.0.0" in env


@pytest.mark.parametrize("service", SERVICES)
def test_a_target_per_service_runs_its_console_script(service: str) -> None:
    command, port = SERVICES[service]
    _, stages = parse()
    stage = next(s for s in stages if s.name == service)
    assert stage.last("CMD") == f'["{command}", "serve"]'
    assert stage.last("ENV") == f"HTTP_PORT={port}"
    project = tomllib.loads((ROOT / "services" / service / "pyproject.toml").read_text())
    assert command in project["project"]["scripts"]


def test_what_the_build_copies_is_in_the_build_context() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def included(path: str) -> bool:
        keep = True
        for pattern in patterns:
            negated = pattern.startswith("!")
            bare = pattern.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(path, bare) or path.startswith(bare + "/"):
                keep = negated
        return keep

    _, stages = parse()
    for stage in stages:
        for name, arguments in stage.instructions:
            if name != "COPY" or "--from=" in arguments:
                continue
            *sources, _destination = arguments.split()
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: missing"
                assert included(source.rstrip("/")), f"COPY {source}: excluded by .dockerignore"


# --- Nothing fetched outside a lock ----------------------------------------------------------

# pip options that take a value: what follows them is not a requirement.
PIP_VALUE_OPTIONS = {
    "-r",
    "--requirement",
    "-c",
    "--constraint",
    "--only-binary",
    "--no-binary",
    "-i",
    "--index-url",
    "--extra-index-url",
}


def shell_commands(script: str) -> list[list[str]]:
    """The simple commands of a RUN (its --mount flags dropped) or a recipe, split on && ; ||."""
    tokens = shlex.split(script)
    while tokens and tokens[0].startswith("--mount"):
        tokens.pop(0)
    commands: list[list[str]] = [[]]
    for token in tokens:
        if token in ("&&", ";", "||"):
            commands.append([])
        else:
            commands[-1].append(token)
    return [command for command in commands if command]


def stage_commands(stage: Stage) -> list[list[str]]:
    return [c for name, value in stage.instructions if name == "RUN" for c in shell_commands(value)]


def subcommand(command: list[str], *words: str) -> list[str] | None:
    """The arguments after `words` (e.g. "pip", "install") when the command runs them, else None."""
    for index in range(len(command) - len(words) + 1):
        if tuple(command[index : index + len(words)]) == words:
            return command[index + len(words) :]
    return None


def option_values(arguments: list[str], option: str) -> list[str]:
    values = []
    for index, token in enumerate(arguments):
        if token == option and index + 1 < len(arguments):
            values.append(arguments[index + 1])
        elif token.startswith(option + "="):
            values.append(token.partition("=")[2])
    return values


def pip_positionals(arguments: list[str]) -> list[str]:
    """Requirements named on the command line itself (so not hash-checked from a file)."""
    positionals = []
    for index, token in enumerate(arguments):
        if token.startswith("-") or (index and arguments[index - 1] in PIP_VALUE_OPTIONS):
            continue
        positionals.append(token)
    return positionals


def requirement_lines(path: Path) -> list[list[str]]:
    """A requirements file's logical lines, comments dropped and continuations joined, as tokens."""
    # pip's own comment rule: from a # at the start or after whitespace.
    lines = [re.sub(r"(^|\s+)#.*$", "", raw) for raw in path.read_text().splitlines()]
    return [shlex.split(line) for line in joined_lines(lines)]


def makefile_variables() -> dict[str, str]:
    return dict(re.findall(r"^(\w+) := (.*)$", MAKEFILE.read_text(), re.M))


def check_hashed_requirements(path: Path, version: str) -> None:
    """Every line a `name==version` with only sha256 hashes; uv among them, at `version`."""
    lines = requirement_lines(path)
    assert lines, f"{path}: no requirement"
    names: dict[str, str] = {}
    for tokens in lines:
        assert not tokens[0].startswith("-"), f"{path}: option line {tokens[0]} (index, nesting)"
        requirement = Requirement(tokens[0])
        specifiers = list(requirement.specifier)
        assert len(specifiers) == 1 and specifiers[0].operator == "==", f"{tokens[0]}: pin with =="
        hashes = tokens[1:]
        assert hashes, f"{path}: {tokens[0]} has no --hash"
        for option in hashes:
            assert SHA256.match(option), f"{path}: {tokens[0]}: {option} is not a sha256 --hash"
        names[canonicalize_name(requirement.name)] = specifiers[0].version
    assert names.get("uv") == version, f"{path} pins uv {names.get('uv')}, the Makefile {version}"


def test_uv_is_installed_only_from_a_hashed_requirements_file() -> None:
    _, stages = parse()
    version = makefile_variables()["UV_VERSION"]
    installs = 0
    for stage in stages:
        for command in stage_commands(stage):
            assert subcommand(command, "uv", "pip") is None, f"unlocked install: {command}"
            assert subcommand(command, "uv", "tool") is None, f"unlocked install: {command}"
            assert command[0] != "uvx", f"unlocked tool: {command}"
            arguments = subcommand(command, "pip", "install")
            if arguments is None:
                continue
            installs += 1
            assert "--require-hashes" in arguments, (
                f"pip install without --require-hashes: {command}"
            )
            assert not pip_positionals(arguments), f"requirements outside the file: {command}"
            files = option_values(arguments, "-r") + option_values(arguments, "--requirement")
            assert len(files) == 1, command
            check_hashed_requirements(ROOT / copied_from(stage, files[0]), version)
    assert installs, "the build stage installs uv with pip"


def copied_from(stage: Stage, destination: str) -> str:
    """The build-context path that a stage's COPY put at `destination`."""
    for name, arguments in stage.instructions:
        if name != "COPY" or "--from=" in arguments:
            continue
        *sources, target = arguments.split()
        for source in sources:
            if target == destination or target.rstrip("/") + "/" + Path(source).name == destination:
                return source
    pytest.fail(f"{destination} is not copied into stage {stage.name}")


def test_make_install_installs_the_same_uv_by_hash() -> None:
    variables = makefile_variables()
    recipe = re.search(r"^\$\(VENV\)/\.installed:.*\n((?:\t.*\n)+)", MAKEFILE.read_text(), re.M)
    assert recipe is not None
    installs = []
    for line in recipe.group(1).splitlines():
        expanded = re.sub(r"\$\((\w+)\)", lambda m: variables.get(m.group(1), m.group(0)), line)
        for command in shell_commands(expanded.strip().lstrip("@")):
            arguments = subcommand(command, "pip", "install")
            if arguments is not None:
                installs.append(arguments)
    assert len(installs) == 1, "make install pip-installs uv once"
    arguments = installs[0]
    assert "--require-hashes" in arguments
    assert not pip_positionals(arguments)
    (requirements,) = option_values(arguments, "-r")
    check_hashed_requirements(ROOT / requirements, variables["UV_VERSION"])
    assert requirements == variables["UV_REQUIREMENTS"], "one requirements file for both"
    assert "$(UV_REQUIREMENTS)" in recipe.group(0).splitlines()[0], "a new hash reinstalls"


def build_group() -> dict[str, str]:
    """The root pyproject's `build` dependency group: package name -> pinned version."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pinned: dict[str, str] = {}
    for line in project["dependency-groups"]["build"]:
        requirement = Requirement(line)
        specifiers = list(requirement.specifier)
        assert len(specifiers) == 1 and specifiers[0].operator == "==", f"{line}: pin with =="
        pinned[canonicalize_name(requirement.name)] = specifiers[0].version
    return pinned


def test_the_build_backend_is_locked_at_the_version_the_build_group_names() -> None:
    pinned = build_group()
    assert "hatchling" in pinned
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    locked: dict[str, Any] = {canonicalize_name(p["name"]): p for p in lock["package"]}
    for name, version in pinned.items():
        assert name in locked, f"{name} is not in uv.lock: run uv lock"
        assert locked[name]["version"] == version, f"uv.lock has {name} {locked[name]['version']}"
        assert "registry" in locked[name]["source"], f"{name} comes from a registry"
        files = [*locked[name].get("wheels", []), locked[name].get("sdist", {})]
        assert all(f.get("hash", "").startswith("sha256:") for f in files if f), name
    # The lock was made from this group, not from an older one.
    root = locked["onboarding"]
    assert {canonicalize_name(d["name"]) for d in root["dev-dependencies"]["build"]} == set(pinned)
    # Whatever our packages' build-system asks for is in the group, at a version it accepts.
    for member in WORKSPACE:
        project = tomllib.loads((ROOT / member / "pyproject.toml").read_text())
        for line in project["build-system"]["requires"]:
            requirement = Requirement(line)
            name = canonicalize_name(requirement.name)
            assert name in pinned, f"{member} builds with {name}, not in the build group"
            assert requirement.specifier.contains(pinned[name]), f"{member}: {line}"


def test_the_workspace_is_built_without_build_isolation_from_the_locked_group() -> None:
    _, stages = parse()
    build = next(s for s in stages if s.name == "build")
    syncs = [
        args for c in stage_commands(build) if (args := subcommand(c, "uv", "sync")) is not None
    ]
    workspace = [i for i, args in enumerate(syncs) if "--no-install-workspace" not in args]
    assert workspace, "no uv sync installs the workspace"
    first = workspace[0]
    assert any("build" in option_values(args, "--group") for args in syncs[:first]), (
        "the build group is installed before the workspace is built"
    )
    assert set(build_group()) >= {"hatchling"}
    for index in workspace:
        arguments = syncs[index]
        assert "--no-build-isolation" in arguments, f"isolated build: uv sync {arguments}"
        # Everything is installed by then: a download would be something outside the lock.
        assert "--offline" in arguments, f"uv sync {arguments} may download"
    # The runtime environment is left without the build backend.
    assert "build" not in option_values(syncs[-1], "--group"), "hatchling stays in /app/.venv"


# --- Run time ----------------------------------------------------------------------------------


def inherited(stage: Stage, stages: list[Stage], instruction: str) -> str | None:
    """The instruction's last value in the stage or, failing that, in the stages it builds on."""
    value = stage.last(instruction)
    if value is None:
        parent = next((s for s in stages if s.name == stage.base), None)
        return inherited(parent, stages, instruction) if parent else None
    return value


def healthcheck() -> tuple[dict[str, str], list[str]]:
    """The runtime stage's HEALTHCHECK: its options and its exec-form command."""
    _, stages = parse()
    for stage in final_stages():
        check = inherited(stage, stages, "HEALTHCHECK")
        assert check is not None and check.upper() != "NONE", f"{stage.name}: no HEALTHCHECK"
    runtime = next(s for s in stages if s.name == "runtime")
    value = runtime.last("HEALTHCHECK")
    assert value is not None
    match = re.fullmatch(r"((?:--[\w-]+=\S+\s+)*)CMD\s+(\[.*\])", value)
    assert match, f"HEALTHCHECK {value}: options then CMD in exec form"
    options = dict(o[2:].split("=", 1) for o in match.group(1).split())
    command = json.loads(match.group(2))
    assert isinstance(command, list) and all(isinstance(part, str) for part in command)
    return options, command


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200
    paths: list[str] = []

    def do_GET(self) -> None:
        type(self).paths.append(self.path)
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def health_server(status: int) -> Iterator[tuple[int, list[str]]]:
    paths: list[str] = []
    handler = type("Handler", (_Health,), {"status": status, "paths": paths})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], paths
    finally:
        server.shutdown()
        server.server_close()


def run_healthcheck(command: list[str], port: int | None) -> int:
    assert command[0] in ("python", "python3"), "the image has Python, not curl"
    env = {k: v for k, v in os.environ.items() if k != "HTTP_PORT"}
    if port is not None:
        env["HTTP_PORT"] = str(port)
    return subprocess.run(
        [sys.executable, *command[1:]], env=env, capture_output=True, timeout=30, check=False
    ).returncode


def test_the_healthcheck_gets_health_on_http_port() -> None:
    options, command = healthcheck()
    with health_server(200) as (port, paths):
        assert run_healthcheck(command, port) == 0
    assert paths == ["/health"]
    with health_server(503) as (port, paths):
        assert run_healthcheck(command, port) == 1, "an unhealthy answer fails the check"
    assert run_healthcheck(command, None) == 1, "without HTTP_PORT the check fails, not passes"
    # Docker counts a check that outlives --timeout as failed: urllib gives up before that.
    assert re.fullmatch(r"\d+s", options["timeout"]), options
    timeout = re.search(r"timeout=(\d+(?:\.\d+)?)", command[-1])
    assert timeout and float(timeout.group(1)) < int(options["timeout"][:-1])


def test_the_runtime_stage_removes_pip() -> None:
    _, stages = parse()
    runtime = next(s for s in stages if s.name == "runtime")
    removed: set[str] = set()
    for command in stage_commands(runtime):
        arguments = subcommand(command, "pip", "uninstall")
        if arguments is not None:
            assert "--yes" in arguments or "-y" in arguments, "no prompt in a build"
            removed |= {canonicalize_name(a) for a in arguments if not a.startswith("-")}
    assert {"pip", "setuptools", "wheel"} <= removed
    # As root, before the service user takes over.
    order = [name for name, _ in runtime.instructions]
    assert order.index("RUN") < order.index("USER")
    # Nothing after it brings an installer back.
    for stage in stages:
        if stage.name == "build":
            continue
        for command in stage_commands(stage):
            assert subcommand(command, "pip", "install") is None, f"{stage.name}: {command}"
            assert "ensurepip" not in command, f"{stage.name}: {command}"


def test_the_base_image_can_be_pinned_by_digest() -> None:
    arguments, stages = parse()
    names = {stage.name for stage in stages if stage.name}
    digest = "sha256:" + "0" * 64
    pinned = {**arguments, "PYTHON_IMAGE": f"{arguments['PYTHON_IMAGE']}@{digest}"}
    for stage in stages:
        if stage.base in names:
            continue
        assert "PYTHON_IMAGE" in stage.base, "every base image goes through the ARG"
        image = resolve(stage.base, pinned)
        assert PINNED.match(image) and image.endswith("@" + digest), image
    text = DOCKERFILE.read_text()
    assert re.search(r"--build-arg PYTHON_IMAGE=\S+@sha256:", text), "document the digest pin"
    assert "crane digest" in text or "imagetools inspect" in text, "and how to get the digest"
