"""JSON Schema of every event, as published under docs/schemas/ (`make schemas`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from onboarding_shared.contract.envelope import envelope_schema
from onboarding_shared.contract.events import ALL_EVENTS


def render_schemas() -> dict[str, str]:
    """File name -> JSON text, one per event, named by routing key."""
    return {
        f"{model.spec.routing_key}.json": json.dumps(
            envelope_schema(model), indent=2, sort_keys=True
        )
        + "\n"
        for model in ALL_EVENTS
    }


def write_schemas(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_schemas().items():
        path = folder / name
        path.write_text(text)
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_schemas(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/schemas")):
        print(path)
