"""SMS on Telnyx: the sending number gets the messaging profile (TELNYX_MESSAGING_PROFILE_ID),
the assistant ``messaging``; without a profile an SMS is refused when it is scheduled, saying
what to set, and nothing is recorded. Against a fake Telnyx account (SDK-checked)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, select

from mission_server.clock import VirtualClock
from mission_server.errors import ConfigurationError
from mission_server.services import assistants, scheduling
from mission_server.services.context import Context
from mission_server.settings import Settings
from mission_server.telephony.telnyx.provider import TelnyxProvider
from state import models as m
from state.db import create_schema, make_engine
from tests.support.telnyx import API_KEY, FakeTelnyx, TelnyxAccount, body_of

CALLER, TARGET = "+13125550001", "+13125550101"
T0 = datetime(2026, 5, 7, 15, 0, tzinfo=UTC)
PROFILE = "40017f2e-1c1b-4b0e-9a4f-1d5e8f0a2b3c"


def context(tmp_path: Path, account: TelnyxAccount, api: FakeTelnyx, **options) -> Context:
    clock = VirtualClock(T0)
    provider = TelnyxProvider(
        API_KEY, transport=httpx.MockTransport(api), clock=clock.now, **options
    )
    engine = make_engine(f"sqlite:///{tmp_path / 'sms.db'}")
    create_schema(engine)
    return Context(
        engine=engine,
        clock=clock,
        provider=provider,
        settings=Settings(MISSION_LLM_BASE_URL=None, MISSION_LLM_MODEL=None),
    )


@pytest.fixture
def account() -> TelnyxAccount:
    return TelnyxAccount([CALLER], clock=lambda: T0)


@pytest.fixture
def api(account: TelnyxAccount) -> FakeTelnyx:
    return FakeTelnyx(fallback=account)


def sender(ctx: Context) -> str:
    a = assistants.create_assistant(ctx, "Texter", "Send the quote.")
    assistants.assign_phone_number(ctx, a.assistant_id)
    return a.assistant_id


def test_without_a_messaging_profile_an_sms_is_refused_when_scheduled(
    tmp_path: Path, account: TelnyxAccount, api: FakeTelnyx
) -> None:
    ctx = context(tmp_path, account, api)
    assistant_id = sender(ctx)

    with pytest.raises(ConfigurationError) as info:
        scheduling.create_scheduled_event(
            ctx, assistant_id=assistant_id, channel="sms_chat", to=TARGET, text="Hi"
        )

    assert "TELNYX_MESSAGING_PROFILE_ID" in str(info.value)
    with Session(ctx.engine) as session:
        assert session.exec(select(m.ScheduledEvent)).all() == []
    assert account.messaging == {}
    # Phone calls are not affected.
    scheduling.create_scheduled_event(
        ctx, assistant_id=assistant_id, channel="phone_call", to=TARGET
    )


def test_an_sms_sets_the_numbers_messaging_profile_and_the_assistants_messaging(
    tmp_path: Path, account: TelnyxAccount, api: FakeTelnyx
) -> None:
    ctx = context(tmp_path, account, api, messaging_profile_id=PROFILE)
    assistant_id = sender(ctx)
    (remote,) = account.assistants.values()
    # Created able to send SMS, with the profile as its default.
    assert remote["enabled_features"] == ["telephony", "messaging"]
    assert remote["messaging_settings"] == {"default_messaging_profile_id": PROFILE}

    for text in ("Your quote: $62 per person", "Reminder: lunch Friday"):
        scheduling.create_scheduled_event(
            ctx, assistant_id=assistant_id, channel="sms_chat", to=TARGET, text=text
        )

    number_id = account.numbers[0]["id"]
    assert account.messaging == {number_id: PROFILE}
    patches = [r for r in api.requests if r.url.path.endswith("/messaging")]
    assert len(patches) == 1  # once per number
    assert body_of(patches[0]) == {"messaging_profile_id": PROFILE}


def test_an_assistant_created_without_messaging_gets_it_before_its_first_sms(
    tmp_path: Path, account: TelnyxAccount, api: FakeTelnyx
) -> None:
    earlier = context(tmp_path, account, api)
    assistant_id = sender(earlier)
    (remote,) = account.assistants.values()
    assert remote["enabled_features"] == ["telephony"]
    ctx = Context(
        engine=earlier.engine,
        clock=earlier.clock,
        provider=TelnyxProvider(
            API_KEY,
            transport=httpx.MockTransport(api),
            clock=earlier.clock.now,
            messaging_profile_id=PROFILE,
        ),
        settings=earlier.settings,
    )

    scheduling.create_scheduled_event(
        ctx, assistant_id=assistant_id, channel="sms_chat", to=TARGET, text="Hi"
    )

    assert remote["enabled_features"] == ["telephony", "messaging"]
    assert remote["messaging_settings"] == {"default_messaging_profile_id": PROFILE}
