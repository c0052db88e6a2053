"""JSON Schema of every event, as published under docs/schemas/ (`make schemas`).

Each file names its dialect (``$schema``: JSON Schema 2020-12, what pydantic writes, with
``$defs``), so a validator in any language (Ajv's ``Ajv2020``, Python's ``jsonschema``) picks
the right rules instead of guessing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from onboarding_shared.contract.envelope import EventData, envelope_schema
from onboarding_shared.contract.events import ALL_EVENTS

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def published_schema(model: type[EventData]) -> dict[str, Any]:
    """The envelope schema of ``model`` as a standalone document, with its dialect."""
    return {"$schema": DIALECT, **envelope_schema(model)}


def render_schemas() -> dict[str, str]:
    """File name -> JSON text, one per event, named by routing key."""
    return {
        f"{model.spec.routing_key}.json": json.dumps(
            published_schema(model), indent=2, sort_keys=True
        )
        + "\n"
        for model in ALL_EVENTS
    }


def write_schemas(folder: Path) -> list[Path]:
    """Write every schema, and remove those of routing keys the contract no longer has (a
    retired key's schema would otherwise stay, looking current)."""
    folder.mkdir(parents=True, exist_ok=True)
    rendered = render_schemas()
    for stale in sorted(folder.glob("*.json")):
        if stale.name not in rendered:
            stale.unlink()
            print(f"removed {stale}")
    written = []
    for name, text in rendered.items():
        path = folder / name
        path.write_text(text)
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_schemas(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/schemas")):
        print(path)
