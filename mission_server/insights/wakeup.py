"""``Wakeup``: a sleep that ends early when told. The Telnyx extractor waits between polls of a
conversation's insights with ``INSIGHTS_READY.sleep``; Telnyx's
``call.conversation_insights.generated`` webhook calls ``INSIGHTS_READY.wake()``, so every
waiting extraction fetches at once instead of at its next poll. Polling stays the fallback.
"""

from __future__ import annotations

import threading

__all__ = ["INSIGHTS_READY", "Wakeup"]


class Wakeup:
    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._generation = 0

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``, or until ``wake`` is called, whichever comes first."""
        with self._changed:
            seen = self._generation
            self._changed.wait_for(lambda: self._generation != seen, timeout=max(0.0, seconds))

    def wake(self) -> None:
        """End every sleep under way."""
        with self._changed:
            self._generation += 1
            self._changed.notify_all()

    @property
    def wakes(self) -> int:
        return self._generation


#: The one the Telnyx extractor sleeps on (``app.make_extractor``).
INSIGHTS_READY = Wakeup()
