"""Calling hours are a hard bound (issue 11, item 4): every placement is inside 08:00-21:00 in
every zone the number belongs to, an explicit timezone only narrows that, a target whose zone
cannot be known needs one, and the bound holds at the moment the provider dials (its schedule
lead included), which is the moment the records hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mission_server.clock import VirtualClock
from mission_server.domain.calling_hours import CallingWindow, is_inside, next_allowed
from mission_server.domain.targets import number_timezones, timezones_for_target
from mission_server.engine.dispatcher import Dispatcher
from mission_server.engine.drivers import run_until_idle
from mission_server.errors import ValidationError
from mission_server.services import assistants, scheduling
from mission_server.services.context import Context
from mission_server.settings import Settings
from mission_server.telephony.scripted import ScriptedProvider
from state.db import create_schema, make_engine

DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
ALL_WEEK = {"days": DAYS, "start": "08:00", "end": "21:00"}
NUMBERS = [
    "+13125550101",  # Chicago
    "+12085551234",  # Idaho: Boise and Los Angeles
    "+12125550100",  # New York
    "+16025550100",  # Arizona (no DST)
    "+442079460000",  # London
    "+61293744000",  # Sydney
]
SIPS = ["sip:desk@example.com", "sips:front@pbx.example.org", "SIP:Ops@Example.COM;transport=tcp"]
EXPLICIT = [
    None,
    "America/Chicago",
    "America/New_York",
    "America/Los_Angeles",
    "Asia/Tokyo",
    "Europe/Berlin",
    "Australia/Sydney",
    "Pacific/Honolulu",
]
# Moments around the 2026 DST switches (US, EU, Australia) as well as anywhere in two years.
DST_EDGES = [
    datetime(2026, 3, 8, 7, 0, tzinfo=UTC),
    datetime(2026, 3, 29, 0, 30, tzinfo=UTC),
    datetime(2026, 4, 4, 15, 30, tzinfo=UTC),
    datetime(2026, 10, 3, 16, 0, tzinfo=UTC),
    datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
    datetime(2026, 11, 1, 6, 30, tzinfo=UTC),
]
moments = st.one_of(
    st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    ),
    st.builds(
        lambda edge, secs: edge + timedelta(seconds=secs),
        st.sampled_from(DST_EDGES),
        st.integers(-36 * 3600, 36 * 3600),
    ),
)
leads = st.sampled_from([timedelta(0), timedelta(seconds=1), timedelta(seconds=16)]) | st.builds(
    lambda ms: timedelta(milliseconds=ms), st.integers(0, 120_000)
)
windows = st.builds(
    lambda days, start, length: {
        "days": [DAYS[d] for d in sorted(days)],
        "start": f"{start:02d}:00",
        "end": f"{min(23, start + length):02d}:00",
    },
    st.sets(st.integers(0, 6), min_size=1),
    st.integers(0, 20),
    st.integers(1, 14),
)


def assert_in_hard_bound(moment: datetime, zones: list[str]) -> None:
    for zone in zones:
        local = moment.astimezone(ZoneInfo(zone))
        assert 8 <= local.hour < 21, (moment, zone, local)


# ---------------------------------------------------------------------- the rule, pure


@given(target=st.sampled_from(NUMBERS), explicit=st.sampled_from(EXPLICIT))
def test_the_zones_are_the_numbers_and_the_explicit_one(target, explicit):
    zones = timezones_for_target(target, explicit)
    assert set(number_timezones(target)) <= set(zones)
    assert set(zones) == set(number_timezones(target)) | ({explicit} if explicit else set())


@given(target=st.sampled_from(SIPS) | st.just("+999123"), explicit=st.sampled_from(EXPLICIT))
def test_a_target_with_no_known_zone_needs_a_timezone(target, explicit):
    if explicit is None:
        with pytest.raises(ValidationError, match="is required") as info:
            timezones_for_target(target, explicit)
        assert info.value.field == "timezone"
    else:
        assert timezones_for_target(target, explicit) == [explicit]


@settings(max_examples=300, deadline=None)
@given(
    moment=moments,
    target=st.sampled_from(NUMBERS + SIPS),
    explicit=st.sampled_from(EXPLICIT),
    window=windows,
    lead=leads,
)
def test_the_next_allowed_moment_keeps_every_zone_until_the_dial(
    moment, target, explicit, window, lead
):
    try:
        zones = timezones_for_target(target, explicit)
    except ValidationError:
        assert explicit is None and not number_timezones(target)
        return
    policy = CallingWindow.from_dict(window)
    try:
        at = next_allowed(moment, zones, policy, lead)
    except ValidationError:
        return  # no common hours: refused, nothing placed
    assert at >= moment
    assert is_inside(at, zones, policy, lead)
    for point in (at, at + lead):
        assert_in_hard_bound(point, zones)
        assert_in_hard_bound(point, number_timezones(target))


# ---------------------------------------------------------------------- end to end


def make_ctx(tmp_path_factory, start: datetime, provider: ScriptedProvider) -> Context:
    engine = make_engine(str(tmp_path_factory.mktemp("db") / "bound.db"))
    create_schema(engine)
    return Context(engine=engine, clock=VirtualClock(start), provider=provider, settings=Settings())


def make_assistant(ctx: Context) -> str:
    a = assistants.create_assistant(ctx, "Caller", "Ask.", greeting="Hello!")
    assistants.assign_phone_number(ctx, a.assistant_id)
    return a.assistant_id


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    start=moments,
    target=st.sampled_from(NUMBERS + SIPS),
    explicit=st.sampled_from(EXPLICIT),
    window=windows,
    lead=leads,
    outcomes=st.lists(st.sampled_from(["busy", "no-answer", "completed"]), min_size=1, max_size=4),
    interval=st.integers(60, 86_400),
    asked_in=st.none() | st.integers(1, 3 * 86_400),
)
def test_no_placement_falls_outside_the_window_in_any_zone_of_the_number(
    tmp_path_factory, start, target, explicit, window, lead, outcomes, interval, asked_in
):
    provider = ScriptedProvider(
        outcomes={}, duration_secs=90, numbers=["+13125550100"], schedule_lead=lead
    )
    ctx = make_ctx(tmp_path_factory, start, provider)
    assistant_id = make_assistant(ctx)
    try:
        call = scheduling.create_scheduled_event(
            ctx,
            assistant_id=assistant_id,
            channel="phone_call",
            to=target,
            timezone=explicit,
            calling_window=window,
            scheduled_at=None if asked_in is None else start + timedelta(seconds=asked_in),
            max_retries_client_errors=3,
            retry_interval_secs=interval,
        )
    except ValidationError as exc:
        # Refused: no zone known and none given, or the zones share no calling hours.
        assert exc.field == "timezone"
        if explicit is None and not number_timezones(target):
            assert "is required" in str(exc)
        event("refused")
        ctx.engine.dispose()
        return
    event("scheduled")
    provider.outcomes[call.telnyx_end_user_target] = outcomes
    run_until_idle(Dispatcher(ctx), ctx.clock, max_sweeps=100)
    done = scheduling.get_scheduled_event(ctx, call.scheduled_event_id)
    assert done.status in {"completed", "failed"}, done
    zones = set(number_timezones(call.telnyx_end_user_target)) | ({explicit} if explicit else set())
    assert set(done.timezones) == zones
    policy = CallingWindow.from_dict(window)
    for attempt in done.call_attempts:
        # The record holds the dial moment: the request plus the provider's lead.
        assert_in_hard_bound(attempt.attempted_at, sorted(zones))
        assert is_inside(attempt.attempted_at - lead, sorted(zones), policy, lead)
    ctx.engine.dispose()


# ---------------------------------------------------------------------- the measured cases


def test_a_chicago_number_with_a_tokyo_timezone_is_not_called_at_midnight_in_chicago(
    tmp_path_factory,
):
    # Tue 2026-03-10 05:00 UTC: 00:00 in Chicago, 14:00 in Tokyo.
    start = datetime(2026, 3, 10, 5, 0, tzinfo=UTC)
    provider = ScriptedProvider(duration_secs=60, numbers=["+13125550100"])
    ctx = make_ctx(tmp_path_factory, start, provider)
    call = scheduling.create_scheduled_event(
        ctx,
        assistant_id=make_assistant(ctx),
        channel="phone_call",
        to="+13125550101",
        timezone="Asia/Tokyo",
        calling_window=ALL_WEEK,
    )
    assert call.timezones == ["America/Chicago", "Asia/Tokyo"]
    run_until_idle(Dispatcher(ctx), ctx.clock)
    done = scheduling.get_scheduled_event(ctx, call.scheduled_event_id)
    attempted = done.call_attempts[0].attempted_at
    # The first moment both are open: 18:00 in Chicago (CDT), 08:00 the next day in Tokyo.
    assert attempted == datetime(2026, 3, 10, 23, 0, tzinfo=UTC)
    assert_in_hard_bound(attempted, ["America/Chicago", "Asia/Tokyo"])


def test_a_sip_target_without_a_timezone_is_refused_naming_the_field(tmp_path_factory):
    ctx = make_ctx(tmp_path_factory, datetime(2026, 3, 10, 15, 0, tzinfo=UTC), ScriptedProvider())
    with pytest.raises(ValidationError) as info:
        scheduling.create_scheduled_event(
            ctx, assistant_id=make_assistant(ctx), channel="phone_call", to="sip:desk@example.com"
        )
    assert info.value.field == "timezone"
    assert "SIP URI" in str(info.value)
    assert scheduling.list_scheduled_events(ctx) == []


def test_a_call_whose_dial_would_fall_after_closing_waits_for_the_next_opening(
    tmp_path_factory,
):
    # Due at 16:59:50 Chicago; the provider dials 16 s later (Telnyx: a 15 s lead, rounded up
    # to a whole second), at 17:00:06: after the 17:00 close. It waits for Wed 09:00, and the
    # attempt records the dial moment.
    start = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
    lead = timedelta(seconds=16)
    provider = ScriptedProvider(duration_secs=60, numbers=["+13125550100"], schedule_lead=lead)
    ctx = make_ctx(tmp_path_factory, start, provider)
    due = datetime(2026, 3, 10, 21, 59, 50, tzinfo=UTC)  # 16:59:50 CDT
    call = scheduling.create_scheduled_event(
        ctx,
        assistant_id=make_assistant(ctx),
        channel="phone_call",
        to="+13125550101",
        scheduled_at=due,
    )
    opening = datetime(2026, 3, 11, 14, 0, tzinfo=UTC)  # Wed 09:00 CDT
    assert call.scheduled_at_fixed_datetime == opening
    assert "dialled Tue 17:00:06 in America/Chicago" in call.deferrals[0].reason
    run_until_idle(Dispatcher(ctx), ctx.clock)
    done = scheduling.get_scheduled_event(ctx, call.scheduled_event_id)
    assert done.call_attempts[0].attempted_at == opening + lead
