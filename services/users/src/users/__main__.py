from onboarding_shared.runtime import run_cli
from users.bootstrap import MIGRATIONS, SERVICE, create_app
from users.settings import load


def main() -> None:
    run_cli(service=SERVICE, load=load, create_app=create_app, migrations=MIGRATIONS)


if __name__ == "__main__":
    main()
