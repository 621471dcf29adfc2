"""Our insight definitions and groups kept at a platform that computes insights itself
(Telnyx, ``telephony.base.InsightPlatform``).

Each insight is an insight template there, each group an insight group with the templates
assigned; ``telnyx_ids`` maps our ids to theirs (kinds ``insight`` and ``insight_group``) with
a fingerprint of what was last sent. ``remote_group_id`` brings one group and its insights in
step and returns the platform's group id, which is what an assistant names.

Idempotent, and safe against a crash at any point:

* a template or group is named with our id in it (``Quote fields [<insight_id>]``), and one
  that has no recorded id is looked up by that name before it is created, so a create whose
  answer was lost (or whose id was not recorded) is found instead of made twice;
* an id is recorded with the fingerprint of the definition sent, so a definition changed
  locally is sent again (``PUT``) and an unchanged one costs no request;
* a recorded template or group that the platform no longer has (404) is created anew;
* the group's assignments are compared with the platform's and only the difference is sent;
* a template whose insight no longer exists locally is deleted at the platform
  (``prune_templates``), so a local delete keeps the platform in step too.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from mission_server.errors import NotFound, ProviderError
from mission_server.insights.schema import compile_schema
from mission_server.services.context import Context
from mission_server.services.insights import definition_of
from mission_server.telephony.base import InsightPlatform, InsightTemplateSpec
from state import models as m
from state.db import session_scope
from state.repo import record_telnyx_id, telnyx_id

__all__ = [
    "GROUP",
    "INSIGHT",
    "platform_of",
    "prune_templates",
    "remote_group_id",
    "remote_insight_id",
    "sync_insight",
    "template_spec",
]

INSIGHT = "insight"
GROUP = "insight_group"


def platform_of(ctx: Context) -> InsightPlatform | None:
    """The provider as an insight platform, or None when it does not compute insights."""
    provider = ctx.provider
    return provider if isinstance(provider, InsightPlatform) else None


def _fingerprint(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def template_spec(row: m.Insight) -> InsightTemplateSpec:
    """The template of an insight: its name with our id, its instructions, and for a
    structured insight the JSON schema of its result (our typed parameters)."""
    definition = definition_of(row)
    schema = None
    if definition.structured:
        schema = {k: v for k, v in compile_schema(definition).items() if k != "$schema"}
    return InsightTemplateSpec(
        name=f"{row.name} [{row.insight_id}]",
        instructions=row.instructions or row.name,
        json_schema=schema,
    )


def _spec_fingerprint(spec: InsightTemplateSpec) -> str:
    return _fingerprint(
        {
            "name": spec.name,
            "instructions": spec.instructions,
            "json_schema": spec.json_schema,
            "webhook": spec.webhook,
        }
    )


def _record(ctx: Context, kind: str, local_id: str, ref: str, fingerprint: str) -> None:
    with session_scope(ctx.engine) as session:
        record_telnyx_id(session, kind, local_id, ref, ctx.now(), fingerprint)


def sync_insight(ctx: Context, platform: InsightPlatform, insight_id: str) -> str:
    """Bring one insight's template in step; its id at the platform.

    Raises:
        NotFound: no such insight. ProviderError: the platform refused or failed.
    """
    with Session(ctx.engine) as session:
        row = session.get(m.Insight, insight_id)
        if row is None:
            raise NotFound("insight", insight_id)
        spec = template_spec(row)
        mapped = telnyx_id(session, INSIGHT, insight_id)
        known = (mapped.telnyx_id, mapped.fingerprint) if mapped is not None else None
    fingerprint = _spec_fingerprint(spec)
    if known is not None:
        ref, sent = known
        if sent == fingerprint:
            return ref
        try:
            platform.update_insight_template(ref, spec)
        except ProviderError as exc:
            if exc.status_code != 404:
                raise
        else:
            _record(ctx, INSIGHT, insight_id, ref, fingerprint)
            return ref
    # Never recorded (or gone at the platform): look it up by name before creating it.
    ref = platform.find_insight_template(spec.name)
    if ref is None:
        ref = platform.create_insight_template(spec)
    else:
        platform.update_insight_template(ref, spec)
    _record(ctx, INSIGHT, insight_id, ref, fingerprint)
    return ref


def remote_group_id(ctx: Context, insight_group_id: str) -> str | None:
    """Bring the group, its insights and their assignment in step at the platform; the
    platform's group id (None when the provider computes no insights: the local id is used).

    Raises:
        NotFound: no such group. ProviderError: the platform refused or failed; what was
            done before is recorded, so the next call carries on from there.
    """
    platform = platform_of(ctx)
    if platform is None:
        return None
    with Session(ctx.engine) as session:
        group = session.get(m.InsightGroup, insight_group_id)
        if group is None:
            raise NotFound("insight group", insight_group_id)
        name = f"{group.name} [{group.insight_group_id}]"
        webhook = group.webhook_url
        members = [
            member.insight_id
            for member in session.exec(
                select(m.InsightGroupMember)
                .where(m.InsightGroupMember.insight_group_id == insight_group_id)
                .order_by(col(m.InsightGroupMember.position))
            )
        ]
        mapped = telnyx_id(session, GROUP, insight_group_id)
        known = (mapped.telnyx_id, mapped.fingerprint) if mapped is not None else None
    prune_templates(ctx)
    refs = [sync_insight(ctx, platform, insight_id) for insight_id in members]
    fingerprint = _fingerprint({"name": name, "webhook": webhook})
    remote = platform.get_insight_group(known[0]) if known is not None else None
    if remote is None:
        remote = platform.find_insight_group(name)
        if remote is None:
            ref = platform.create_insight_group(name, webhook)
            remote = platform.get_insight_group(ref)
            assigned: tuple[str, ...] = remote.insight_refs if remote is not None else ()
        else:
            ref, assigned = remote.ref, remote.insight_refs
            platform.update_insight_group(ref, name, webhook)
    else:
        ref, assigned = remote.ref, remote.insight_refs
        if known is not None and known[1] != fingerprint:
            platform.update_insight_group(ref, name, webhook)
    for insight_ref in refs:
        if insight_ref not in assigned:
            platform.assign_insight(ref, insight_ref)
    for insight_ref in assigned:
        if insight_ref not in refs:
            platform.unassign_insight(ref, insight_ref)
    _record(ctx, GROUP, insight_group_id, ref, fingerprint)
    return ref


def prune_templates(ctx: Context) -> list[str]:
    """Delete at the platform the templates of insights that no longer exist locally, and
    forget their ids; the ids deleted.

    Raises:
        ProviderError: the platform refused or failed (the id is kept, to try again).
    """
    platform = platform_of(ctx)
    if platform is None:
        return []
    with Session(ctx.engine) as session:
        stale = [
            (row.local_id, row.telnyx_id)
            for row in session.exec(
                select(m.TelnyxId)
                .outerjoin(m.Insight, col(m.Insight.insight_id) == col(m.TelnyxId.local_id))
                .where(m.TelnyxId.kind == INSIGHT, col(m.Insight.insight_id).is_(None))
            )
        ]
    for local_id, ref in stale:
        platform.delete_insight_template(ref)
        with session_scope(ctx.engine) as session:
            row = session.get(m.TelnyxId, (INSIGHT, local_id))
            if row is not None:
                session.delete(row)
    return [ref for _, ref in stale]


def remote_insight_id(engine: Engine, insight_id: str) -> str | None:
    """The platform's id of our insight, when it was synced."""
    with Session(engine) as session:
        row = telnyx_id(session, INSIGHT, insight_id)
        return row.telnyx_id if row is not None else None
