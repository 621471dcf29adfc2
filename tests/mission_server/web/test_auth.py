"""Who may see the pages: ``mission serve --http`` serves them beside /mcp behind the same
token (a browser signs in once for an HttpOnly, SameSite=Strict session cookie) and the same
Host rules; ``mission ui`` serves them on loopback without a token. Read-only throughout."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr
from starlette.testclient import TestClient

from mission_server.cli.serve import http_app
from mission_server.clock import VirtualClock
from mission_server.mcp.http import check_http_options, transport_security
from mission_server.mcp.server import build_server
from mission_server.services import missions
from mission_server.services.context import Context
from mission_server.web.app import build_web_app
from mission_server.web.auth import SESSION_COOKIE, SESSION_SECS
from tests.conftest import T0

TOKEN = "s3cret-token-for-tests"
BASE = "http://127.0.0.1:8765"


@pytest.fixture
def wall() -> VirtualClock:
    return VirtualClock(T0)


@pytest.fixture
def records(ctx: Context, wall: VirtualClock) -> tuple[Context, str]:
    """A context with one mission and one run; its wall clock is virtual (cookie expiry)."""
    ctx.wall_clock = wall
    mission = missions.create_mission(ctx, "Secret mission name")
    run = missions.start_run(ctx, mission.mission_id)
    return ctx, run.run_id


@pytest.fixture
def client(records) -> Iterator[tuple[TestClient, str]]:
    ctx, run_id = records
    token = SecretStr(TOKEN)
    security = check_http_options("127.0.0.1", token, False, None)
    app = http_app(build_server(ctx, auth_token=token), ctx, "127.0.0.1", security, token)
    with TestClient(app, base_url=BASE, follow_redirects=False) as test_client:
        yield test_client, run_id


def pages(run_id: str) -> list[str]:
    return [
        "/",
        "/?status=running",
        "/?cursor=nope",
        f"/runs/{run_id}",
        "/runs/unknown-run",
        "/conversations/unknown-conversation",
        "/anything/else",
    ]


def cookie(value: str) -> dict[str, str]:
    return {"Cookie": f"{SESSION_COOKIE}={value}"}


def sign_in(client: TestClient) -> str:
    response = client.post("/login", data={"token": TOKEN, "next": "/"})
    assert response.status_code == 303
    return response.cookies[SESSION_COOKIE]


def test_without_the_token_or_a_session_every_page_answers_401_with_the_sign_in_form(client):
    test_client, run_id = client
    for path in pages(run_id):
        response = test_client.get(path)
        assert response.status_code == 401, path
        assert 'action="/login"' in response.text
        assert "Secret mission name" not in response.text
        assert "Content-Security-Policy" in response.headers
    for bad in ("Bearer wrong", "Basic " + TOKEN, TOKEN):
        response = test_client.get("/", headers={"Authorization": bad})
        assert response.status_code == 401, bad
    forged = cookie("9999999999.deadbeef")
    assert test_client.get("/", headers=forged).status_code == 401


def test_the_bearer_token_opens_every_page(client):
    test_client, run_id = client
    response = test_client.get("/", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert "Secret mission name" in response.text
    response = test_client.get(f"/runs/{run_id}", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200


def test_signing_in_once_gives_an_httponly_samesite_strict_cookie_that_opens_the_pages(client):
    test_client, run_id = client
    wrong = test_client.post("/login", data={"token": "guess", "next": "/"})
    assert wrong.status_code == 401
    assert "set-cookie" not in wrong.headers
    assert "not the server" in wrong.text

    response = test_client.post("/login", data={"token": TOKEN, "next": f"/runs/{run_id}"})
    assert response.status_code == 303
    assert response.headers["location"] == f"/runs/{run_id}"
    set_cookie = response.headers["set-cookie"]
    assert set_cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in set_cookie
    assert "samesite=strict" in set_cookie.lower()
    assert "Path=/" in set_cookie
    assert TOKEN not in set_cookie
    session = cookie(response.cookies[SESSION_COOKIE])
    test_client.cookies.clear()
    page = test_client.get(f"/runs/{run_id}", headers=session)
    assert page.status_code == 200
    assert "Secret mission name" in page.text


def test_the_session_expires_and_cannot_be_forged(client, wall):
    test_client, _ = client
    value = sign_in(test_client)
    test_client.cookies.clear()
    issued, mac = value.split(".")
    later = f"{int(issued) + 3600}.{mac}"  # a later issue time with the old MAC
    assert test_client.get("/", headers=cookie(later)).status_code == 401
    assert test_client.get("/", headers=cookie(value)).status_code == 200
    wall.advance(SESSION_SECS + 1)
    assert test_client.get("/", headers=cookie(value)).status_code == 401


def test_sign_in_never_redirects_to_another_site(client):
    test_client, _ = client
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        response = test_client.post("/login", data={"token": TOKEN, "next": target})
        assert response.status_code == 303
        assert response.headers["location"] == "/", target


def test_a_foreign_host_answers_421_on_the_pages_and_on_mcp(client):
    test_client, run_id = client
    foreign = {"Host": "evil.example:8765", "Authorization": f"Bearer {TOKEN}"}
    for path in [*pages(run_id), "/login", "/static/style.css"]:
        assert test_client.get(path, headers=foreign).status_code == 421, path
    assert test_client.post("/login", data={"token": TOKEN}, headers=foreign).status_code == 421
    mcp = test_client.post(
        "/mcp",
        headers={**foreign, "Content-Type": "application/json", "Accept": "application/json"},
        content=b"{}",
    )
    assert mcp.status_code == 421
    cross = {"Origin": "http://evil.example", "Authorization": f"Bearer {TOKEN}"}
    assert test_client.get("/", headers=cross).status_code == 403


def test_mcp_still_takes_only_the_bearer_token(client):
    test_client, _ = client
    value = sign_in(test_client)
    test_client.cookies.clear()
    response = test_client.post(
        "/mcp",
        headers={
            **cookie(value),
            "Content-Type": "application/json",
            "Accept": "application/json",
        },
        content=b"{}",
    )
    assert response.status_code == 401


def test_the_pages_are_read_only(client):
    test_client, run_id = client
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        for path in ("/", f"/runs/{run_id}", "/conversations/x"):
            assert test_client.request(method, path, headers=auth).status_code == 405, (
                method,
                path,
            )


def test_mission_ui_serves_the_pages_on_loopback_without_a_token(records):
    ctx, run_id = records
    app = build_web_app(ctx, token=None, security=transport_security("127.0.0.1", None))
    with TestClient(app, base_url="http://127.0.0.1:8766", follow_redirects=False) as local:
        assert local.get("/").status_code == 200
        assert "Secret mission name" in local.get(f"/runs/{run_id}").text
        assert local.get("/login").status_code == 303  # nothing to sign in to
        assert local.get("/", headers={"Host": "evil.example"}).status_code == 421
        assert local.post("/").status_code == 405
        assert local.get("/runs/nope").status_code == 404
        assert local.get("/?status=bogus").status_code == 400


def test_mcp_paths_keep_their_answers_beside_the_pages(client):
    test_client, _ = client
    # OAuth discovery finds nothing (as before the pages), rather than a sign-in page.
    assert test_client.get("/.well-known/oauth-protected-resource").status_code == 404
    moved = test_client.post("/mcp/?x=1", content=b"{}")
    assert moved.status_code == 307
    assert moved.headers["location"] == f"{BASE}/mcp?x=1"
