from invitations.adapters.orm import metadata
from onboarding_shared.db import run_alembic_environment

run_alembic_environment(metadata)
