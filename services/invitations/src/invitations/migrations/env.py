from onboarding_shared.db import run_alembic_environment

from invitations.adapters.orm import metadata

run_alembic_environment(metadata)
