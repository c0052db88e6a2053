"""A development gateway: one public origin in front of the services, routing paths the way the
Kubernetes Ingress and the compose gateway (Caddy) do, so the console, its cookies and every API
it calls share one origin under `make run` as in production. Never use it in production: it is
a plain HTTP proxy with no limits of its own."""

from __future__ import annotations

import argparse
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route as StarletteRoute


@dataclass(frozen=True)
class Route:
    """``path`` and everything under it (``/join`` takes ``/join/abc``); ``/`` only itself."""

    path: str
    service: str

    def matches(self, path: str) -> bool:
        if self.path == "/":
            return path == "/"
        return path == self.path or path.startswith(self.path + "/")


# What the public may reach. The Ingress (deploy/k8s/base/ingress.yaml) and the compose gateway
# (deploy/gateway/Caddyfile) route the same paths; tests/deploy checks they agree. Operations
# endpoints (/metrics, /ready, /docs) stay private.
ROUTES: tuple[Route, ...] = (
    Route("/", "users"),  # sign-in, the console, the member's landing page
    Route("/sign-in", "users"),
    Route("/sign-out", "users"),
    Route("/static", "users"),
    Route("/join", "users"),
    Route("/set-password", "users"),
    Route("/api/v1/auth", "users"),
    Route("/api/v1/users", "users"),
    Route("/api/v1/audit", "users"),
    Route("/api/v1/invitations", "invitations"),
)

# Per RFC 9110 7.6.1 a proxy does not forward these.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)


# The gateway's own server adds these.
_SET_BY_GATEWAY = frozenset({"date", "server"})


def route_for(path: str) -> Route | None:
    return next((route for route in ROUTES if route.matches(path)), None)


def _forwarded_headers(request: Request) -> list[tuple[str, str]]:
    headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP]
    client = request.client.host if request.client else ""
    headers += [
        ("x-forwarded-for", client),
        ("x-forwarded-proto", request.url.scheme),
        ("x-forwarded-host", request.headers.get("host", "")),
    ]
    return headers


def create_gateway(
    upstreams: Mapping[str, str], transport: httpx.AsyncBaseTransport | None = None
) -> Starlette:
    """``upstreams`` maps a service name to its base URL (``http://127.0.0.1:8011``)."""
    client = httpx.AsyncClient(
        timeout=httpx.Timeout(60.0),
        follow_redirects=False,
        transport=transport,
        # A proxy keeps no cookies: one person's session cookie must never reach another's
        # request. The browser's own Cookie header passes through untouched.
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
    )

    async def forward(request: Request) -> Response:
        route = route_for(request.url.path)
        if route is None:
            return PlainTextResponse("not routed by the gateway", status_code=404)
        target = httpx.URL(
            upstreams[route.service] + request.url.path, query=request.url.query.encode()
        )
        body = await request.body()
        headers = _forwarded_headers(request)
        outgoing = client.build_request(request.method, target, headers=headers, content=body)
        try:
            answer = await client.send(outgoing, stream=True)
        except httpx.TransportError:
            return PlainTextResponse(f"{route.service} does not answer", status_code=502)
        return _streamed(answer)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        await client.aclose()

    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    return Starlette(
        routes=[StarletteRoute("/{path:path}", forward, methods=methods)], lifespan=lifespan
    )


def _streamed(answer: httpx.Response) -> Response:
    headers = [(k, v) for k, v in answer.headers.multi_items() if k.lower() not in _HOP_BY_HOP]
    response = StreamingResponse(
        answer.aiter_raw(),
        status_code=answer.status_code,
        background=BackgroundTask(answer.aclose),
    )
    # Every header as the service sent it, Set-Cookie included, each once.
    response.raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    return response


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument(
        "--upstreams",
        required=True,
        help='JSON: {"users": "http://127.0.0.1:8011", "invitations": "http://127.0.0.1:8012"}',
    )
    arguments = parser.parse_args()
    upstreams: dict[str, str] = json.loads(arguments.upstreams)
    uvicorn.run(
        create_gateway(upstreams),
        host=arguments.host,
        port=arguments.port,
        log_level="warning",
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()
