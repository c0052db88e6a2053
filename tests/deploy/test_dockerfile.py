"""The Dockerfile, read without a Docker engine: pinned base image, non-root user, installed
from the lock file, and a stage per service whose command exists."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from dataclasses import dataclass, field

import pytest

from tests.deploy.support import ROOT, SERVICES

DOCKERFILE = ROOT / "Dockerfile"
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


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    logical: list[str] = []
    current = ""
    for line in text.splitlines():
        if line.strip().startswith("#") and not current:
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        current += line
        if current.strip():
            logical.append(current.strip())
        current = ""
    parsed = []
    for line in logical:
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
    makefile_uv = re.search(r"^UV_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.M)
    assert makefile_uv is not None
    assert f"uv=={makefile_uv.group(1)}" in DOCKERFILE.read_text(), "same uv as the Makefile"


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
