"""Fixtures for the insight tests: a temporary SQLite database, hand-written transcripts and a
real webhook receiver on 127.0.0.1."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy.engine import Engine

from mission_server.telephony.base import TranscriptMessage
from state import models as m
from state.db import create_schema, make_engine, session_scope

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def _transcript(*turns: tuple[str, str]) -> list[TranscriptMessage]:
    return [
        TranscriptMessage(role=role, text=text, sent_at=T0 + timedelta(seconds=i))  # type: ignore[arg-type]
        for i, (role, text) in enumerate(turns)
    ]


@pytest.fixture(autouse=True)
def webhooks_may_reach_the_local_receiver(monkeypatch: pytest.MonkeyPatch) -> None:
    """The receiver listens on 127.0.0.1, which webhooks refuse by default: opt in, as an
    operator testing locally would (``MISSION_WEBHOOK_ALLOW_PRIVATE=1``)."""
    monkeypatch.setenv("MISSION_WEBHOOK_ALLOW_PRIVATE", "1")


@pytest.fixture
def say() -> Callable[..., list[TranscriptMessage]]:
    """Build a transcript from hand-written (role, text) turns."""
    return _transcript


@pytest.fixture
def engine(tmp_path) -> Iterator[Engine]:
    eng = make_engine(str(tmp_path / "t.db"))
    create_schema(eng)
    yield eng
    eng.dispose()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookReceiver:
    """A real HTTP server; answers each POST with the next scripted status (then 200)."""

    base_url: str
    statuses: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    state = WebhookReceiver(base_url="")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            with lock:
                state.received.append(Received(self.path, dict(self.headers.items()), body))
                status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@dataclass
class Seeded:
    assistant_id: str
    conversation_id: str


def _seed(
    engine: Engine,
    turns: list[tuple[str, str]],
    *,
    conversation_id: str = "conv-1",
    assistant_id: str | None = None,
    end_user_target: str = "+13125550101",
    metadata: dict[str, object] | None = None,
    dynamic_variables: dict[str, object] | None = None,
    created_at: datetime = T0,
) -> Seeded:
    with session_scope(engine) as session:
        if assistant_id is None:
            assistant = m.Assistant(
                name="Negotiator", instructions="Get a quote.", created_at=T0, updated_at=T0
            )
            session.add(assistant)
            session.flush()
            assistant_id = assistant.assistant_id
        session.add(
            m.Conversation(
                conversation_id=conversation_id,
                assistant_id=assistant_id,
                end_user_target=end_user_target,
                agent_target="+13125550199",
                meta=metadata or {},
                dynamic_variables=dynamic_variables or {},
                call_status="completed",
                started_at=created_at,
                ended_at=created_at,
                created_at=created_at,
            )
        )
        session.flush()
        for seq, (role, text) in enumerate(turns):
            session.add(
                m.Message(
                    conversation_id=conversation_id,
                    seq=seq,
                    role=role,
                    text=text,
                    sent_at=created_at + timedelta(seconds=seq),
                )
            )
    return Seeded(assistant_id=assistant_id, conversation_id=conversation_id)


@pytest.fixture
def seed() -> Callable[..., Seeded]:
    """Store an assistant (unless one is given), a conversation and its messages."""
    return _seed
