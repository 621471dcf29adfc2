"""``TelnyxMissions``: the Telnyx Missions API calls the mirror makes
(``services.mirror.MissionsMirror``), over the shared ``TelnyxClient``.

Each call is tried once (``RetryPolicy(max_attempts=1)``): the mirror's outbox retries, with
backoff through the service clock, so an outage never holds a caller up. Paths and bodies are
the SDK's (``resources/ai/missions/``); the field mapping is ``mapping_missions``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import SecretStr

from mission_server.errors import ConfigurationError, ProviderError
from mission_server.net.retry import RetryPolicy
from mission_server.telephony.telnyx import mapping_missions as mm
from mission_server.telephony.telnyx.client import DEFAULT_BASE_URL, TelnyxClient, seg

__all__ = ["TelnyxMissions"]

ONCE = RetryPolicy(max_attempts=1)


def _remote_id(body: Any, key: str, where: str) -> str:
    value = mm.data(body)
    found = value.get(key) if isinstance(value, dict) else None
    if not isinstance(found, str) or not found:
        raise ProviderError(
            f"Telnyx {where} answered without data.{key}", retryable=True, status_code=None
        )
    return found


class TelnyxMissions:
    """The Missions API, one request per call; raises ``ProviderError`` (``retryable`` says
    whether the outbox should try again)."""

    def __init__(self, client: TelnyxClient) -> None:
        self._client = client

    @classmethod
    def from_settings(
        cls,
        settings: Any,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> TelnyxMissions:
        """Raises: ConfigurationError: ``TELNYX_API_KEY`` is not set."""
        key = getattr(settings, "telnyx_api_key", None)
        if not isinstance(key, SecretStr) or not key.get_secret_value().strip():
            raise ConfigurationError("TELNYX_API_KEY is not set: the Telnyx mirror needs it")
        client = TelnyxClient(
            key,
            base_url=getattr(settings, "telnyx_base_url", DEFAULT_BASE_URL),
            timeout=20.0,
            policy=ONCE,
            transport=transport,
            sleep=sleep,
            clock=clock,
            rng=random.Random(),
        )
        return cls(client)

    def close(self) -> None:
        self._client.close()

    def scrub(self, text: str) -> str:
        return self._client.scrub(text)

    def _call(self, method: str, path: str, json: Any = None, params: Any = None) -> Any:
        return self._client.request(method, path, json=json, params=params)

    # ----------------------------------------------------------------- missions

    def create_mission(self, mission: Mapping[str, Any]) -> str:
        body = self._call("POST", "/ai/missions", mm.mission_body(mission))
        return _remote_id(body, "mission_id", "POST /ai/missions")

    def update_mission(self, remote_id: str, mission: Mapping[str, Any]) -> None:
        self._call("PUT", f"/ai/missions/{seg(remote_id)}", mm.mission_body(mission))

    def find_mission(self, mission: Mapping[str, Any]) -> str | None:
        for item in self._client.paginate("/ai/missions"):
            meta = item.get("metadata")
            if isinstance(meta, dict) and meta.get("local_mission_id") == mission["mission_id"]:
                return str(item.get("mission_id"))
        return None

    # ----------------------------------------------------------------- runs

    def _runs(self, mission_remote: str) -> str:
        return f"/ai/missions/{seg(mission_remote)}/runs"

    def create_run(self, mission_remote: str, run: Mapping[str, Any]) -> str:
        path = self._runs(mission_remote)
        body = self._call("POST", path, mm.run_create_body(run))
        return _remote_id(body, "run_id", f"POST {path}")

    def find_run(self, mission_remote: str, run: Mapping[str, Any]) -> str | None:
        for item in self._client.paginate(self._runs(mission_remote)):
            meta = item.get("metadata")
            if isinstance(meta, dict) and meta.get("local_run_id") == run["run_id"]:
                return str(item.get("run_id"))
        return None

    def update_run(
        self,
        mission_remote: str,
        run_remote: str,
        run: Mapping[str, Any],
        *,
        with_status: bool = True,
    ) -> None:
        path = f"{self._runs(mission_remote)}/{seg(run_remote)}"
        self._call("PATCH", path, mm.run_update_body(run, with_status=with_status))

    # ----------------------------------------------------------------- plan

    def _plan(self, mission_remote: str, run_remote: str) -> str:
        return f"{self._runs(mission_remote)}/{seg(run_remote)}/plan"

    def plan_step_ids(self, mission_remote: str, run_remote: str) -> set[str]:
        body = mm.data(self._call("GET", self._plan(mission_remote, run_remote)))
        items = body if isinstance(body, list) else []
        return {str(s.get("step_id")) for s in items if isinstance(s, dict)}

    def add_steps(
        self,
        mission_remote: str,
        run_remote: str,
        steps: Sequence[Mapping[str, Any]],
        *,
        first: bool,
    ) -> None:
        """Create the plan (``first``) or add steps to it."""
        path = self._plan(mission_remote, run_remote) + ("" if first else "/steps")
        self._call("POST", path, {"steps": [mm.step_create_body(s) for s in steps]})

    def update_step(
        self,
        mission_remote: str,
        run_remote: str,
        step: Mapping[str, Any],
        *,
        with_status: bool = True,
    ) -> None:
        path = f"{self._plan(mission_remote, run_remote)}/steps/{seg(step['step_id'])}"
        self._call("PATCH", path, mm.step_update_body(step, with_status=with_status))

    # ----------------------------------------------------------------- agents, events

    def _agents(self, mission_remote: str, run_remote: str) -> str:
        return f"{self._runs(mission_remote)}/{seg(run_remote)}/telnyx-agents"

    def linked_agents(self, mission_remote: str, run_remote: str) -> set[str]:
        body = mm.data(self._call("GET", self._agents(mission_remote, run_remote)))
        items = body if isinstance(body, list) else []
        return {str(a.get("telnyx_agent_id")) for a in items if isinstance(a, dict)}

    def link_agent(self, mission_remote: str, run_remote: str, telnyx_agent_id: str) -> None:
        """Link the agent to the run; one already linked (HTTP 409) is what was asked."""
        try:
            self._call(
                "POST",
                self._agents(mission_remote, run_remote),
                {"telnyx_agent_id": telnyx_agent_id},
            )
        except ProviderError as exc:
            if exc.status_code != 409:
                raise

    def log_event(self, mission_remote: str, run_remote: str, event: Mapping[str, Any]) -> str:
        path = f"{self._runs(mission_remote)}/{seg(run_remote)}/events"
        body = self._call("POST", path, mm.event_body(event))
        return _remote_id(body, "event_id", f"POST {path}")
