"""A fake Telnyx v2 API for ``TelnyxProvider`` tests, served through ``httpx.MockTransport``.

``FakeTelnyx`` routes ``(method, path)`` to scripted handlers and records every request: the
wire-format tests in ``tests/mission_server/test_telnyx.py`` script each answer, and checks
each request and answer against the official SDK (``tests.support.telnyx_oracle``). Requests it
has no route for go to its ``fallback``, by default a Telnyx-style 404. ``TelnyxAccount`` is
a stateful fallback: an account whose assistants, numbers and calls the API creates and
changes, for the provider conformance suite.

Imported as ``tests.support.telnyx``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import phonenumbers

from tests.support.telnyx_oracle import checked

API_KEY = "KEY0187A1B2C3D4E5F6_s3cr3tT0k3nValue"

Handler = Callable[[httpx.Request], httpx.Response]


def not_found(request: httpx.Request) -> httpx.Response:
    """Telnyx's answer to a path it does not know."""
    detail = f"no route {request.method} {request.url.path}"
    return error(404, "10005", "Resource not found", detail)


def error(
    status: int, code: str, title: str, detail: str, pointer: str | None = None
) -> httpx.Response:
    """A Telnyx error response: ``{"errors": [{"code", "title", "detail", "source"}]}``."""
    item: dict[str, Any] = {"code": code, "title": title, "detail": detail}
    if pointer is not None:
        item["source"] = {"pointer": pointer}
    return httpx.Response(status, json={"errors": [item]})


class FakeTelnyx:
    """Routes (method, path) to handlers; a list of handlers is served in order, the last one
    repeating. Records every request. Unrouted requests go to ``fallback``.

    Every request and every answer is checked against the official SDK
    (``tests.support.telnyx_oracle``): a request the SDK does not describe, or an answer its
    response model does not, fails the test with ``OracleViolation``."""

    def __init__(self, fallback: Handler = not_found) -> None:
        self.routes: dict[tuple[str, str], list[Handler]] = {}
        self.requests: list[httpx.Request] = []
        self.fallback = fallback

    def on(self, method: str, path: str, *handlers: Handler) -> None:
        self.routes[(method, "/v2" + path)] = list(handlers)

    def off(self, method: str, path: str) -> None:
        """Remove the route: the path is served by ``fallback`` again."""
        self.routes.pop((method, "/v2" + path), None)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return checked(self._answer)(request)

    def _answer(self, request: httpx.Request) -> httpx.Response:
        handlers = self.routes.get((request.method, request.url.path))
        if not handlers:
            return self.fallback(request)
        handler = handlers.pop(0) if len(handlers) > 1 else handlers[0]
        return handler(request)

    def sent(self, method: str, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == method and r.url.path == "/v2" + path]


def reply(status: int = 200, body: Any = None, headers: dict[str, str] | None = None) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body, headers=headers)

    return handler


def raise_(exc_type: type[httpx.TransportError]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc_type("timed out", request=request)

    return handler


def body_of(request: httpx.Request) -> Any:
    return json.loads(request.content)


# -- answers shaped like the SDK's response models (the oracle checks them) ------------------


def phone_number_json(phone_number: str, number_id: str, **overrides: Any) -> dict[str, Any]:
    """A number as ``GET /phone_numbers`` lists it (``NumbersPhoneNumberDetailed``)."""
    data: dict[str, Any] = {
        "id": number_id,
        "record_type": "phone_number",
        "phone_number": phone_number,
        "status": "active",
        "phone_number_type": "local",
        "country_iso_alpha2": "US",
        "created_at": "2026-01-05T10:00:00Z",
        "purchased_at": "2026-01-05T10:00:00Z",
        "deletion_lock_enabled": False,
        "tags": [],
        "connection_id": None,
    }
    data.update(overrides)
    return data


def conversation_json(conversation_id: str, metadata: dict[str, Any], **overrides: Any) -> dict:
    """A conversation as ``GET /ai/conversations`` lists it (``Conversation``: its metadata
    values are strings)."""
    data: dict[str, Any] = {
        "id": conversation_id,
        "created_at": "2026-05-07T14:30:15Z",
        "last_message_at": "2026-05-07T14:32:15Z",
        "metadata": {k: str(v) for k, v in metadata.items()},
    }
    data.update(overrides)
    return data


def page(items: list[Any], *, number: int = 1, total_pages: int | None = None) -> dict[str, Any]:
    """A page of a list endpoint (``data`` and ``meta``; ``DefaultFlatPaginationMeta``)."""
    pages = (1 if items else 0) if total_pages is None else total_pages
    return {"data": items, "meta": {"page_number": number, "total_pages": pages}}


# -- a stateful account ------------------------------------------------------------------------

_PATHS: list[tuple[str, re.Pattern[str], str]] = [
    (method, re.compile(f"^/v2{pattern}$"), name)
    for method, pattern, name in (
        ("POST", r"/ai/assistants", "create_assistant"),
        ("GET", r"/ai/assistants", "list_assistants"),
        ("GET", r"/ai/assistants/(?P<aid>[^/]+)", "get_assistant"),
        ("POST", r"/ai/assistants/(?P<aid>[^/]+)", "update_assistant"),
        ("POST", r"/ai/assistants/(?P<aid>[^/]+)/scheduled_events", "create_event"),
        ("GET", r"/ai/assistants/(?P<aid>[^/]+)/scheduled_events", "list_events"),
        ("GET", r"/ai/assistants/(?P<aid>[^/]+)/scheduled_events/(?P<eid>[^/]+)", "get_event"),
        ("PATCH", r"/phone_numbers/(?P<nid>[^/]+)", "update_number"),
        (
            "DELETE",
            r"/ai/assistants/(?P<aid>[^/]+)/scheduled_events/(?P<eid>[^/]+)",
            "delete_event",
        ),
        ("GET", r"/phone_numbers", "list_numbers"),
        ("PATCH", r"/phone_numbers/(?P<nid>[^/]+)/messaging", "update_messaging"),
        ("GET", r"/ai/conversations/insights", "list_templates"),
        ("POST", r"/ai/conversations/insights", "create_template"),
        ("PUT", r"/ai/conversations/insights/(?P<tid>[^/]+)", "update_template"),
        ("DELETE", r"/ai/conversations/insights/(?P<tid>[^/]+)", "delete_template"),
        ("GET", r"/ai/conversations/insight-groups", "list_groups"),
        ("POST", r"/ai/conversations/insight-groups", "create_group"),
        ("GET", r"/ai/conversations/insight-groups/(?P<gid>[^/]+)", "get_group"),
        ("PUT", r"/ai/conversations/insight-groups/(?P<gid>[^/]+)", "update_group"),
        (
            "POST",
            r"/ai/conversations/insight-groups/(?P<gid>[^/]+)/insights/(?P<tid>[^/]+)/assign",
            "assign",
        ),
        (
            "DELETE",
            r"/ai/conversations/insight-groups/(?P<gid>[^/]+)/insights/(?P<tid>[^/]+)/unassign",
            "unassign",
        ),
        ("GET", r"/ai/conversations", "list_conversations"),
        ("GET", r"/ai/conversations/(?P<cid>[^/]+)/messages", "list_messages"),
        ("GET", r"/ai/conversations/(?P<cid>[^/]+)/conversations-insights", "list_insights"),
    )
]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class TelnyxAccount:
    """An in-memory Telnyx account behind the endpoints ``TelnyxProvider`` uses: assistants
    (each with its TeXML application), phone numbers, scheduled events, conversations and
    their messages. Pass it as a ``FakeTelnyx`` fallback, so scripted routes can still
    override single endpoints (an outage, say).

    It models what the reference (``09_scheduled-events.md``) documents, and no more:

    * a scheduled event keeps the ``conversation_metadata`` it was created with and shows it
      when listed; the conversation of an answered call carries it too, with ``assistant_id``;
    * the ``Idempotency-Key`` header is ignored: the reference documents none, so every
      accepted ``POST .../scheduled_events`` creates one more event (one more phone call);
    * a target that is not a valid E.164 number, or a caller id that is not one of the
      account's numbers, is refused with 422.

    Calls only move when a test moves them: ``ring`` (dispatched, still ringing) and
    ``finish`` (the callee's ``answers`` decide the terminal status; default ``completed``),
    or, with ``auto_finish``, by themselves once their dial time has passed on ``clock``.

    Insights are computed as Telnyx does: insight templates and groups are kept
    (``/ai/conversations/insights``, ``/ai/conversations/insight-groups``), and when an
    answered call ends, each template of its assistant's group
    (``insight_settings.insight_group_id``) gets a result in the conversation's
    ``conversations-insights``: a structured template's the JSON of the callee's
    ``insight_answers`` for its schema's properties, a free-text one a sentence. A pending
    event can be deleted (cancelled); one already dispatched answers 409.
    """

    def __init__(
        self,
        numbers: list[str],
        *,
        answers: dict[str, str] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        call_secs: int = 120,
        insight_answers: dict[str, dict[str, Any]] | None = None,
        auto_finish: bool = False,
    ) -> None:
        self.clock = clock
        self.insight_answers = dict(insight_answers or {})
        self.auto_finish = auto_finish
        self.templates: dict[str, dict[str, Any]] = {}
        self.groups: dict[str, dict[str, Any]] = {}
        self.insight_runs: dict[str, list[dict[str, Any]]] = {}  # conversation -> records
        #: Numbers' messaging profiles (number id -> profile id), as PATCHed.
        self.messaging: dict[str, str] = {}
        self.answers = dict(answers or {})
        self.call_secs = call_secs
        self.assistants: dict[str, dict[str, Any]] = {}
        self.numbers: list[dict[str, Any]] = [
            phone_number_json(number, str(1293384261075731499 + index), hd_voice_enabled=index == 0)
            for index, number in enumerate(numbers)
        ]
        self.events: dict[str, dict[str, Any]] = {}  # scheduled_event_id -> event
        self.conversations: dict[str, dict[str, Any]] = {}
        self.messages: dict[str, list[dict[str, Any]]] = {}

    # -- what a test does to the world ----------------------------------------------------------

    def event_of(self, handle: str) -> dict[str, Any]:
        """The event behind a ``TelnyxProvider`` handle ``scheduled_event/<aid>/<eid>``."""
        return self.events[handle.rsplit("/", 1)[-1]]

    def keys(self) -> list[str]:
        """The idempotency key of every scheduled event, one entry per event, in order."""
        return [
            e["conversation_metadata"].get("mission_idempotency_key") for e in self.events.values()
        ]

    def ring(self, handle: str) -> datetime:
        """Dispatch the event: the phone rings. Returns a moment while it rings."""
        event = self.event_of(handle)
        event.update(status="in_progress", call_status="ringing")
        event["dispatched_at"] = event["scheduled_at_fixed_datetime"]
        return _parse(event["dispatched_at"]) + timedelta(seconds=5)

    def finish(self, handle: str) -> datetime:
        """End the call as its callee answers; returns a moment after it ended."""
        event = self.event_of(handle)
        started = _parse(event["scheduled_at_fixed_datetime"])
        event.setdefault("dispatched_at", _iso(started))
        status = self.answers.get(event["telnyx_end_user_target"], "completed")
        answered = status == "completed"
        duration = self.call_secs if answered else None
        number = len(self.conversations) + 1
        attempt = {
            "attempt_number": 1,
            "attempted_at": _iso(started),
            "call_status": status,
            "call_duration": duration,
            "telnyx_call_control_id": f"v3:fake-call-{event['scheduled_event_id']}",
        }
        event.update(
            status="completed" if answered else "failed",
            call_status=status,
            call_duration=duration or 0,
            call_attempts=[attempt],
        )
        if answered:
            conversation_id = f"conversation-{number}"
            self.conversations[conversation_id] = conversation_json(
                conversation_id,
                {
                    **event["conversation_metadata"],
                    "assistant_id": event["assistant_id"],
                    "call_control_id": attempt["telnyx_call_control_id"],
                    "telnyx_conversation_channel": event["telnyx_conversation_channel"],
                },
                name=event["telnyx_end_user_target"],
                created_at=_iso(started),
                last_message_at=_iso(started + timedelta(seconds=duration or 0)),
            )
            self.messages[conversation_id] = [
                {"role": "assistant", "text": "Hello!", "sent_at": _iso(started)},
                {
                    "role": "user",
                    "text": "Thanks for calling.",
                    "sent_at": _iso(started + timedelta(seconds=4)),
                },
            ]
            self._compute_insights(event, conversation_id, started + timedelta(seconds=duration))
        return started + timedelta(seconds=(duration or 30) + 60)

    def _compute_insights(self, event: dict[str, Any], conversation_id: str, at: datetime) -> None:
        assistant = self.assistants.get(event["assistant_id"], {})
        group_id = (assistant.get("insight_settings") or {}).get("insight_group_id")
        group = self.groups.get(group_id or "")
        if group is None:
            return
        answers = self.insight_answers.get(event["telnyx_end_user_target"], {})
        results = []
        for template_id in group["insight_ids"]:
            template = self.templates[template_id]
            schema = template.get("json_schema")
            if isinstance(schema, dict) and schema.get("properties"):
                wanted = {k: answers[k] for k in schema["properties"] if k in answers}
                result = json.dumps(wanted)
            else:
                result = "The callee answered and the call ended politely."
            results.append({"insight_id": template_id, "result": result})
        self.insight_runs.setdefault(conversation_id, []).append(
            {
                "id": f"insight-run-{len(self.insight_runs) + 1}",
                "status": "completed",
                "created_at": _iso(at),
                "conversation_insights": results,
            }
        )

    # -- the API -----------------------------------------------------------------------------

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.auto_finish:
            now = self.clock()
            for event in list(self.events.values()):
                due = _parse(event["scheduled_at_fixed_datetime"])
                if event["status"] == "pending" and due <= now:
                    self.finish(
                        f"scheduled_event/{event['assistant_id']}/{event['scheduled_event_id']}"
                    )
        for method, pattern, name in _PATHS:
            match = pattern.match(request.url.path)
            if method == request.method and match:
                handler = getattr(self, f"_{name}")
                return handler(request, **match.groupdict())
        return not_found(request)

    def _page(self, request: httpx.Request, items: list[dict[str, Any]]) -> httpx.Response:
        number = int(request.url.params.get("page[number]", 1))
        size = int(request.url.params.get("page[size]", 20))
        chunk = items[(number - 1) * size : number * size]
        pages = -(-len(items) // size)
        meta = {"total_pages": pages, "total_results": len(items), "page_number": number}
        return httpx.Response(200, json={"data": chunk, "meta": {**meta, "page_size": size}})

    def _assistant_or_404(self, aid: str) -> dict[str, Any] | httpx.Response:
        assistant = self.assistants.get(aid)
        if assistant is None:
            return error(404, "10005", "Resource not found", f"assistant {aid} does not exist")
        return assistant

    def _create_assistant(self, request: httpx.Request) -> httpx.Response:
        body = body_of(request)
        missing = [f for f in ("name", "instructions", "model") if not body.get(f)]
        if missing:
            detail = [{"loc": ["body", f], "msg": "Field required"} for f in missing]
            return httpx.Response(422, json={"detail": detail})
        number = len(self.assistants) + 1
        aid = f"assistant-{number:08d}-b185-478f-b2ef-85159e226727"
        self.assistants[aid] = {
            **body,
            "id": aid,
            "created_at": _iso(self.clock()),
            "telephony_settings": {"default_texml_app_id": str(2293445112736466706 + number)},
        }
        return httpx.Response(200, json=self.assistants[aid])

    def _list_assistants(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": list(self.assistants.values())})

    def _get_assistant(self, request: httpx.Request, aid: str) -> httpx.Response:
        found = self._assistant_or_404(aid)
        return found if isinstance(found, httpx.Response) else httpx.Response(200, json=found)

    def _update_assistant(self, request: httpx.Request, aid: str) -> httpx.Response:
        found = self._assistant_or_404(aid)
        if isinstance(found, httpx.Response):
            return found
        found.update(body_of(request))
        return httpx.Response(200, json=found)

    def _create_event(self, request: httpx.Request, aid: str) -> httpx.Response:
        found = self._assistant_or_404(aid)
        if isinstance(found, httpx.Response):
            return found
        body = body_of(request)
        target = body.get("telnyx_end_user_target", "")
        try:
            valid = phonenumbers.is_valid_number(phonenumbers.parse(target, None))
        except phonenumbers.NumberParseException:
            valid = False
        if not valid:
            return error(
                422,
                "10015",
                "Invalid value",
                "The 'to' number is not a valid E.164 number.",
                "/telnyx_end_user_target",
            )
        if body.get("telnyx_agent_target") not in {n["phone_number"] for n in self.numbers}:
            return error(
                422,
                "10015",
                "Invalid value",
                "The 'from' number is not a number of this account.",
                "/telnyx_agent_target",
            )
        event_id = f"event-{len(self.events) + 1}"
        self.events[event_id] = {
            **body,
            "assistant_id": aid,
            "scheduled_event_id": event_id,
            "created_at": _iso(self.clock()),
            "status": "pending",
            "retry_count": 0,
            "errors": [],
        }
        return httpx.Response(201, json=self.events[event_id])

    def _list_events(self, request: httpx.Request, aid: str) -> httpx.Response:
        found = self._assistant_or_404(aid)
        if isinstance(found, httpx.Response):
            return found
        return self._page(request, [e for e in self.events.values() if e["assistant_id"] == aid])

    def _get_event(self, request: httpx.Request, aid: str, eid: str) -> httpx.Response:
        event = self.events.get(eid)
        if event is None or event["assistant_id"] != aid:
            return error(404, "10005", "Resource not found", f"scheduled event {eid}")
        return httpx.Response(200, json=event)

    def _delete_event(self, request: httpx.Request, aid: str, eid: str) -> httpx.Response:
        event = self.events.get(eid)
        if event is None or event["assistant_id"] != aid:
            return error(404, "10005", "Resource not found", f"scheduled event {eid}")
        if event["status"] != "pending":
            return error(409, "10015", "Conflict", "the event was already dispatched")
        del self.events[eid]
        return httpx.Response(204)

    def _update_messaging(self, request: httpx.Request, nid: str) -> httpx.Response:
        number = next((n for n in self.numbers if n["id"] == nid), None)
        if number is None:
            return error(404, "10005", "Resource not found", f"phone number {nid}")
        profile = body_of(request).get("messaging_profile_id")
        self.messaging[nid] = profile
        data = {
            "id": nid,
            "record_type": "messaging_settings",
            "phone_number": number["phone_number"],
            "messaging_profile_id": profile,
        }
        return httpx.Response(200, json={"data": data})

    # -- insight templates and groups -------------------------------------------------------

    def _template_or_404(self, tid: str) -> dict[str, Any] | httpx.Response:
        found = self.templates.get(tid)
        if found is None:
            return error(404, "10005", "Resource not found", f"insight {tid}")
        return found

    def _list_templates(self, request: httpx.Request) -> httpx.Response:
        return self._page(request, list(self.templates.values()))

    def _create_template(self, request: httpx.Request) -> httpx.Response:
        body = body_of(request)
        tid = f"insight-{len(self.templates) + 1:04d}-0000-4000-8000-000000000000"
        self.templates[tid] = {
            **body,
            "id": tid,
            "created_at": _iso(self.clock()),
            "insight_type": "custom",
        }
        return httpx.Response(200, json={"data": self.templates[tid]})

    def _update_template(self, request: httpx.Request, tid: str) -> httpx.Response:
        found = self._template_or_404(tid)
        if isinstance(found, httpx.Response):
            return found
        found.update(body_of(request))
        return httpx.Response(200, json={"data": found})

    def _delete_template(self, request: httpx.Request, tid: str) -> httpx.Response:
        found = self._template_or_404(tid)
        if isinstance(found, httpx.Response):
            return found
        del self.templates[tid]
        for group in self.groups.values():
            if tid in group["insight_ids"]:
                group["insight_ids"].remove(tid)
        return httpx.Response(204)

    def _group_json(self, group: dict[str, Any]) -> dict[str, Any]:
        shown = {k: v for k, v in group.items() if k != "insight_ids"}
        return {**shown, "insights": [self.templates[t] for t in group["insight_ids"]]}

    def _group_or_404(self, gid: str) -> dict[str, Any] | httpx.Response:
        found = self.groups.get(gid)
        if found is None:
            return error(404, "10005", "Resource not found", f"insight group {gid}")
        return found

    def _list_groups(self, request: httpx.Request) -> httpx.Response:
        return self._page(request, [self._group_json(g) for g in self.groups.values()])

    def _create_group(self, request: httpx.Request) -> httpx.Response:
        body = body_of(request)
        gid = f"group-{len(self.groups) + 1:04d}-0000-4000-8000-000000000000"
        self.groups[gid] = {**body, "id": gid, "created_at": _iso(self.clock()), "insight_ids": []}
        return httpx.Response(200, json={"data": self._group_json(self.groups[gid])})

    def _get_group(self, request: httpx.Request, gid: str) -> httpx.Response:
        found = self._group_or_404(gid)
        if isinstance(found, httpx.Response):
            return found
        return httpx.Response(200, json={"data": self._group_json(found)})

    def _update_group(self, request: httpx.Request, gid: str) -> httpx.Response:
        found = self._group_or_404(gid)
        if isinstance(found, httpx.Response):
            return found
        found.update(body_of(request))
        return httpx.Response(200, json={"data": self._group_json(found)})

    def _assign(self, request: httpx.Request, gid: str, tid: str) -> httpx.Response:
        group, template = self._group_or_404(gid), self._template_or_404(tid)
        for found in (group, template):
            if isinstance(found, httpx.Response):
                return found
        assert isinstance(group, dict)
        if tid not in group["insight_ids"]:
            group["insight_ids"].append(tid)
        return httpx.Response(200)

    def _unassign(self, request: httpx.Request, gid: str, tid: str) -> httpx.Response:
        group = self._group_or_404(gid)
        if isinstance(group, httpx.Response):
            return group
        if tid in group["insight_ids"]:
            group["insight_ids"].remove(tid)
        return httpx.Response(200)

    def _list_insights(self, request: httpx.Request, cid: str) -> httpx.Response:
        records = self.insight_runs.get(cid, [])
        meta = {"page_number": 1, "page_size": 20, "total_pages": 1, "total_results": len(records)}
        return httpx.Response(200, json={"data": records, "meta": meta})

    def _list_numbers(self, request: httpx.Request) -> httpx.Response:
        return self._page(request, self.numbers)

    def _update_number(self, request: httpx.Request, nid: str) -> httpx.Response:
        number = next((n for n in self.numbers if n["id"] == nid), None)
        if number is None:
            return error(404, "10005", "Resource not found", f"phone number {nid}")
        number.update(body_of(request))
        return httpx.Response(200, json={"data": number})

    def _list_conversations(self, request: httpx.Request) -> httpx.Response:
        # PostgREST-style filters, as in the reference: ``metadata->key=eq.value``.
        found = list(self.conversations.values())
        for name, value in request.url.params.items():
            if name.startswith("metadata->") and value.startswith("eq."):
                key, wanted = name.removeprefix("metadata->"), value.removeprefix("eq.")
                found = [c for c in found if str(c["metadata"].get(key)) == wanted]
        limit = int(request.url.params.get("limit", 20))
        return httpx.Response(200, json={"data": found[:limit]})

    def _list_messages(self, request: httpx.Request, cid: str) -> httpx.Response:
        if cid not in self.messages:
            return error(404, "10005", "Resource not found", f"conversation {cid}")
        return self._page(request, self.messages[cid])
