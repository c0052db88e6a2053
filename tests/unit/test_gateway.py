"""The development gateway: routes the public paths only, passes cookies through and keeps none."""

from __future__ import annotations

import httpx
from devtools.gateway import ROUTES, create_gateway, route_for
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def echo(request: Request) -> Response:
    response = JSONResponse(
        {
            "service": request.app.state.name,
            "path": request.url.path,
            "query": request.url.query,
            "cookie": request.headers.get("cookie"),
            "forwarded_for": request.headers.get("x-forwarded-for"),
            "body": (await request.body()).decode(),
        }
    )
    if request.url.path == "/sign-in":
        response.set_cookie("onboarding_session", "secret-of-one-person", httponly=True)
    return response


def upstream(name: str) -> Starlette:
    app = Starlette(routes=[Route("/{path:path}", echo, methods=["GET", "POST", "DELETE"])])
    app.state.name = name
    return app


class Upstreams(httpx.AsyncBaseTransport):
    """Each service as an in-process app, chosen by the port the gateway calls."""

    def __init__(self) -> None:
        self._apps = {
            port: httpx.ASGITransport(app=upstream(name))
            for port, name in ((8011, "users"), (8012, "invitations"))
        }

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._apps[request.url.port or 80].handle_async_request(request)


def gateway() -> Starlette:
    return create_gateway(
        {"users": "http://127.0.0.1:8011", "invitations": "http://127.0.0.1:8012"},
        transport=Upstreams(),
    )


def browser(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")


def test_each_public_path_goes_to_its_service_and_nothing_else_is_routed() -> None:
    assert route_for("/") == ROUTES[0]
    assert route_for("/join/abc") is not None and route_for("/join/abc").service == "users"  # type: ignore[union-attr]
    assert route_for("/api/v1/invitations/1/resend").service == "invitations"  # type: ignore[union-attr]
    for private in ("/metrics", "/ready", "/docs", "/joinx", "/api/v1", "/index.html"):
        assert route_for(private) is None, private


async def test_requests_reach_the_service_with_path_query_body_and_cookie() -> None:
    async with browser(gateway()) as client:
        answer = await client.post(
            "/api/v1/invitations?x=1", content=b"emails", headers={"cookie": "a=b"}
        )
        missing = await client.get("/metrics")
    assert answer.json() == {
        "service": "invitations",
        "path": "/api/v1/invitations",
        "query": "x=1",
        "cookie": "a=b",
        "forwarded_for": "127.0.0.1",
        "body": "emails",
    }
    assert missing.status_code == 404


async def test_a_session_cookie_goes_back_to_its_browser_and_to_no_one_else() -> None:
    shared = gateway()
    async with browser(shared) as first, browser(shared) as second:
        signed_in = await first.post("/sign-in")
        answer = await second.get("/")
    assert "secret-of-one-person" in signed_in.headers["set-cookie"]
    assert answer.json()["cookie"] is None
