"""``mission insights deliveries`` and ``mission insights redeliver`` through typer's CliRunner,
against a migrated SQLite file and a real webhook receiver on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from typer.testing import CliRunner

from mission_server.cli.main import app as mission_app
from mission_server.insights.offline import OfflineExtractor
from mission_server.net.webhooks import SIGNATURE_HEADER, WebhookSender, verify_signature
from mission_server.services import extraction
from mission_server.services import insights as service
from mission_server.services.webhooks import deliver_conversation_insights
from state import models as m
from state.db import make_engine, upgrade

SECRET = "whsec-cli-SECRET-91ab"
NOW = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)
TURNS = [
    ("assistant", "What would you charge per person for 40 guests?"),
    ("user", "We'd be at $62 per person."),
]

runner = CliRunner()


@pytest.fixture
def db(tmp_path) -> str:
    return str(tmp_path / "missions.db")


@pytest.fixture
def migrated(db: str) -> Iterator[Engine]:
    engine = make_engine(db)
    upgrade(engine)  # the schema the CLI expects (it migrates on open)
    yield engine
    engine.dispose()


@pytest.fixture
def failed_id(migrated: Engine, seed: Callable[..., Any], receiver: Any) -> str:
    """conv-1 with a quote insight whose group webhook is the receiver; one delivery that the
    receiver refused with a 404."""
    quote = service.create_insight(
        migrated,
        name="Quote",
        now=NOW,
        parameters=[
            {"name": "price_per_person", "type": "number", "required": True},
        ],
    )
    group = service.create_insight_group(
        migrated, "Catering", [quote.insight_id], webhook_url=f"{receiver.base_url}/hook", now=NOW
    )
    seeded = seed(migrated, TURNS)
    service.assign_insight_group(migrated, seeded.assistant_id, group.insight_group_id, now=NOW)
    extraction.extract_conversation_insights(
        migrated, "conv-1", OfflineExtractor(), now=NOW, deliver=False
    )
    receiver.statuses[:] = [404]
    delivery = deliver_conversation_insights(
        migrated, "conv-1", now=NOW, sender=WebhookSender(secret=SECRET)
    )
    assert delivery is not None and not delivery.delivered
    return delivery.delivery_id


def delivery_rows(engine: Engine) -> int:
    with Session(engine) as session:
        return len(session.exec(select(m.WebhookDelivery)).all())


def test_a_failed_delivery_is_listed_and_redelivered_signed(
    db: str, migrated: Engine, failed_id: str, receiver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    listed = runner.invoke(
        mission_app, ["insights", "deliveries", "--failed", "--json", "--db", db]
    )
    assert listed.exit_code == 0, listed.output
    [failed] = json.loads(listed.stdout)
    assert failed["delivery_id"] == failed_id and failed["delivered"] is False
    assert failed["attempts"][0]["status_code"] == 404
    assert failed["attempts"][0]["error"] == "HTTP 404"

    table = runner.invoke(mission_app, ["insights", "deliveries", "--db", db])
    assert table.exit_code == 0, table.output
    assert failed_id in table.output and "HTTP 404" in table.output
    assert "failed" in table.output

    monkeypatch.setenv("MISSION_WEBHOOK_SECRET", SECRET)
    resent = runner.invoke(mission_app, ["insights", "redeliver", failed_id, "--json", "--db", db])
    assert resent.exit_code == 0, resent.output
    again = json.loads(resent.stdout)
    assert again["delivered"] is True and again["delivery_id"] != failed_id
    request = receiver.received[-1]
    assert verify_signature(SECRET, request.body, request.headers[SIGNATURE_HEADER])
    assert SECRET not in resent.output

    of_conversation = runner.invoke(
        mission_app, ["insights", "deliveries", "--conversation", "conv-1", "--json", "--db", db]
    )
    assert [d["delivery_id"] for d in json.loads(of_conversation.stdout)] == [
        again["delivery_id"],
        failed_id,
    ]
    # The earlier failure stays in the history as it happened.
    still_failed = runner.invoke(
        mission_app, ["insights", "deliveries", "--failed", "--json", "--db", db]
    )
    assert [d["delivery_id"] for d in json.loads(still_failed.stdout)] == [failed_id]


def test_redeliver_without_a_secret_exits_2_and_sends_nothing(
    db: str, migrated: Engine, failed_id: str, receiver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MISSION_WEBHOOK_SECRET", raising=False)
    result = runner.invoke(mission_app, ["insights", "redeliver", failed_id, "--db", db])
    assert result.exit_code == 2
    assert "MISSION_WEBHOOK_SECRET is not set" in result.output
    assert len(receiver.received) == 1 and delivery_rows(migrated) == 1


def test_a_redelivery_that_fails_again_exits_1_and_is_recorded(
    db: str, migrated: Engine, failed_id: str, receiver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MISSION_WEBHOOK_SECRET", SECRET)
    receiver.statuses[:] = [410]  # final: no retries to wait through
    result = runner.invoke(mission_app, ["insights", "redeliver", "conv-1", "--db", db])
    assert result.exit_code == 1
    assert "HTTP 410" in result.output
    assert delivery_rows(migrated) == 2


def test_unknown_ids_and_bad_options_exit_2(db: str, migrated: Engine) -> None:
    unknown = runner.invoke(mission_app, ["insights", "redeliver", "nope", "--db", db])
    assert unknown.exit_code == 2
    assert "webhook delivery or conversation 'nope' not found" in unknown.output
    ghost = runner.invoke(
        mission_app, ["insights", "deliveries", "--conversation", "ghost", "--db", db]
    )
    assert ghost.exit_code == 2 and "conversation 'ghost' not found" in ghost.output
    bad_limit = runner.invoke(mission_app, ["insights", "deliveries", "--limit", "0", "--db", db])
    assert bad_limit.exit_code == 2
    assert "limit must be between 1 and 500, got 0" in bad_limit.output
    empty = runner.invoke(mission_app, ["insights", "deliveries", "--json", "--db", db])
    assert empty.exit_code == 0 and json.loads(empty.stdout) == []
