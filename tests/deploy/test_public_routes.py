"""The public routes are defined once, as ROUTES in devtools/gateway.py (the gateway `make run`
starts). The Kubernetes Ingress and the compose gateway (Caddy, deploy/gateway/Caddyfile) must
route exactly those paths, matched the same way (`/` only itself, any other path itself and
everything under it), to the same services; nothing else is public."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from devtools.gateway import ROUTES, Route, route_for

from tests.deploy.support import DEPLOY, OVERLAYS, SERVICES, load_yaml, objects

CADDYFILE = DEPLOY / "gateway" / "Caddyfile"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
PUBLIC_PORT = 8001  # PUBLIC_URL http://localhost:8001 in the compose file


def routed_services() -> set[str]:
    return {route.service for route in ROUTES}


# Kubernetes ---------------------------------------------------------------------------------


def path_type(route: Route) -> str:
    return "Exact" if route.path == "/" else "Prefix"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_ingress_routes_exactly_the_public_routes(overlay: str) -> None:
    ingress = objects(overlay, "Ingress")["onboarding"]
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"], "one host: one origin"
    paths = rule["http"]["paths"]
    routed = sorted((p["path"], p["pathType"], p["backend"]["service"]["name"]) for p in paths)
    assert routed == sorted((r.path, path_type(r), r.service) for r in ROUTES)
    services = objects(overlay, "Service")
    for path in paths:
        backend = path["backend"]["service"]
        assert backend["port"] == {"name": "http"}
        assert "http" in {port["name"] for port in services[backend["name"]]["spec"]["ports"]}


# Compose: the Caddyfile ---------------------------------------------------------------------
#
# Read in this shape only (anything else fails the parse, so the check cannot pass vacuously):
#
#     http://:8080 {
#         @users {                      one named matcher per upstream, of `path` lines only
#             path /                    (`/` alone: only itself)
#             path /join /join/*        (any other path: itself and everything under it)
#         }
#         handle @users {
#             reverse_proxy users:8001  a compose service and its HTTP_PORT
#         }
#         handle {
#             respond "..." 404         the catch-all: nothing else is routed
#         }
#     }

SITE = re.compile(r"^http://:(\d+)\s*\{", re.MULTILINE)
MATCHER = re.compile(r"^\s*@([\w-]+)\s*\{([^{}]*)\}", re.MULTILINE)
HANDLE = re.compile(
    r"^\s*handle\s+@([\w-]+)\s*\{\s*reverse_proxy\s+([\w.-]+):(\d+)\s*\}", re.MULTILINE
)
CATCH_ALL = re.compile(r'^\s*handle\s*\{\s*respond\s+"[^"]*"\s+404\s*\}', re.MULTILINE)
# Directives that would route, rewrite or serve outside the shape above.
OTHER_ROUTING = re.compile(r"\b(handle_path|route|rewrite|uri|redir|file_server|root)\b")


@dataclass(frozen=True)
class Caddyfile:
    port: int
    routes: dict[str, tuple[str, int]]  # path matcher -> (upstream host, port)


def parse_caddyfile(text: str) -> Caddyfile:
    text = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    (port,) = SITE.findall(text)
    matchers: dict[str, list[str]] = {}
    for name, body in MATCHER.findall(text):
        assert name not in matchers, f"@{name} defined twice"
        matchers[name] = []
        for line in body.splitlines():
            words = line.split()
            if words:
                assert words[0] == "path", f"@{name}: only path lines (another would AND)"
                matchers[name] += words[1:]
    handles = HANDLE.findall(text)
    assert len(re.findall(r"\bhandle\b", text)) == len(handles) + 1, "unexpected handle block"
    assert len(re.findall(r"\breverse_proxy\b", text)) == len(handles)
    assert CATCH_ALL.search(text), 'a catch-all `handle { respond "..." 404 }`'
    assert not OTHER_ROUTING.search(text)
    routes: dict[str, tuple[str, int]] = {}
    for name, host, upstream_port in handles:
        for pattern in matchers.pop(name):
            assert pattern not in routes, f"{pattern} routed twice"
            routes[pattern] = (host, int(upstream_port))
    assert not matchers, f"matchers no handle uses: {sorted(matchers)}"
    return Caddyfile(port=int(port), routes=routes)


def caddy_patterns(route: Route) -> list[str]:
    return ["/"] if route.path == "/" else [route.path, f"{route.path}/*"]


def expected_caddy_routes() -> dict[str, tuple[str, int]]:
    return {
        pattern: (route.service, SERVICES[route.service][1])
        for route in ROUTES
        for pattern in caddy_patterns(route)
    }


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = load_yaml(COMPOSE_FILE)
    return document


def test_the_caddyfile_routes_exactly_the_public_routes(compose: dict[str, Any]) -> None:
    caddyfile = parse_caddyfile(CADDYFILE.read_text())
    assert caddyfile.routes == expected_caddy_routes()
    for host, port in set(caddyfile.routes.values()):
        environment = compose["services"][host]["environment"]
        assert environment["HTTP_PORT"] == str(port), f"{host} listens on {port}"


@pytest.mark.parametrize("route", ROUTES, ids=lambda route: route.path)
def test_the_caddyfile_check_catches_a_missing_route(route: Route) -> None:
    text = CADDYFILE.read_text()
    for pattern in caddy_patterns(route):
        text = re.sub(rf"(?<=[ \t]){re.escape(pattern)}(?=\s)", "", text)
    assert parse_caddyfile(text).routes != expected_caddy_routes()


# Compose: the gateway service ---------------------------------------------------------------


def host_ports(service: dict[str, Any]) -> set[int]:
    """Host ports of the short syntax: "HOST:CONTAINER" or "IP:HOST:CONTAINER"."""
    return {int(str(port).split(":")[-2]) for port in service.get("ports", []) if ":" in port}


def test_the_compose_gateway_is_the_one_public_origin(compose: dict[str, Any]) -> None:
    services = compose["services"]
    gateway = services["gateway"]
    listen = parse_caddyfile(CADDYFILE.read_text()).port
    assert re.fullmatch(r"caddy:\d+\.\d+\.\d+-alpine", gateway["image"]), "an exact version"
    assert gateway["ports"] == [f"{PUBLIC_PORT}:{listen}"]
    assert "./gateway/Caddyfile:/etc/caddy/Caddyfile:ro" in gateway["volumes"]
    assert gateway["depends_on"] == {
        name: {"condition": "service_healthy"} for name in routed_services()
    }
    for name in routed_services():
        public_url = services[name]["environment"]["PUBLIC_URL"]
        assert public_url == f"http://localhost:{PUBLIC_PORT}"
    others = [name for name, service in services.items() if name != "gateway"]
    assert [name for name in others if PUBLIC_PORT in host_ports(services[name])] == []
    assert gateway["read_only"] is True
    assert gateway["cap_drop"] == ["ALL"]


# Links ---------------------------------------------------------------------------------------

SERVICES_SOURCE = DEPLOY.parent / "services"
# Every public link is built on PUBLIC_URL: `f"{policy.public_url}/join/{token}"` and the like.
LINK_ON_PUBLIC_URL = re.compile(r"public_url\}(/[\w/-]*)")
# Absolute paths in the pages' markup and scripts: href="/…", action="/…", "/api/…", `/api/…`.
PATH_IN_PAGE = re.compile(r"""(?:href|action|src)="(/[^"{?#]*)|["'`](/(?:api|static)/[^"'`?$]*)""")


def links_built_by_the_services() -> set[str]:
    return {
        match
        for source in SERVICES_SOURCE.glob("*/src/**/*.py")
        for match in LINK_ON_PUBLIC_URL.findall(source.read_text())
    }


def paths_in_pages() -> set[str]:
    pages = [
        *SERVICES_SOURCE.glob("*/src/**/templates/*.html"),
        *SERVICES_SOURCE.glob("*/src/**/static/*.js"),
    ]
    return {
        next(part for part in match if part)
        for page in pages
        for match in PATH_IN_PAGE.findall(page.read_text())
    }


def test_the_link_scans_find_what_people_follow() -> None:
    # Emails (join, set-password), the sign-in page, the console and its API calls.
    assert {"/join/", "/set-password", "/"} <= links_built_by_the_services()
    assert {"/", "/sign-in", "/sign-out", "/api/v1/users", "/api/v1/invitations"} <= (
        paths_in_pages()
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_link_in_emails_and_pages_is_routed_everywhere(overlay: str) -> None:
    ingress = objects(overlay, "Ingress")["onboarding"]
    ingress_routes = [
        Route(path["path"], path["backend"]["service"]["name"])
        for path in ingress["spec"]["rules"][0]["http"]["paths"]
    ]
    caddy_patterns = parse_caddyfile(CADDYFILE.read_text()).routes
    for link in links_built_by_the_services() | paths_in_pages():
        assert route_for(link) is not None, f"{link} is not in ROUTES"
        assert any(route.matches(link) for route in ingress_routes), f"{link}: not in the Ingress"
        assert any(caddy_matches(pattern, link) for pattern in caddy_patterns), (
            f"{link}: not in the Caddyfile"
        )


def caddy_matches(pattern: str, path: str) -> bool:
    """Caddy's `path` matcher: exact, or a prefix when the pattern ends in `*`."""
    return path.startswith(pattern[:-1]) if pattern.endswith("*") else path == pattern
