from auth_listener.bootstrap import MIGRATIONS, SERVICE, create_app
from auth_listener.settings import load
from onboarding_shared.runtime import run_cli


def main() -> None:
    run_cli(service=SERVICE, load=load, create_app=create_app, migrations=MIGRATIONS)


if __name__ == "__main__":
    main()
