from onboarding_shared.db import run_alembic_environment
from users.adapters.orm import metadata

run_alembic_environment(metadata)
