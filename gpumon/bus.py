"""The one entrance to the event stream: every producer publishes here, every consumer listens.

Producers are the supervisor (pools, samples, crashes), the host sampler and the session itself
(start and end); consumers are the session log, the screen, `sweep`'s table, exporters and
tests. Delivery is synchronous and in order, so the log and the screen see the same sequence.

A consumer that fails does not silence the others, and its failure is not lost on a terminal
Textual owns: it becomes an event. A session log that cannot be written raises
`StreamWriteError`, which becomes RecordingStopped (the title and the exit status say so); any
other exception becomes one error Notice per consumer, with later failures counted.
"""

from __future__ import annotations

from collections.abc import Callable

from gpumon import events as ev

Listener = Callable[[ev.Event], None]


class StreamWriteError(OSError):
    """Raised by a consumer that persists the stream when it can no longer write it."""

    def __init__(self, reason: str, path: str = "") -> None:
        super().__init__(reason)
        self.reason, self.path = reason, path


class Bus:
    def __init__(self, listeners: list[Listener] | None = None) -> None:
        self._listeners: list[Listener] = list(listeners or [])
        self.failures: dict[str, int] = {}  # consumer name -> exceptions raised

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def publish(self, event: ev.Event) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception as e:
                self._failed(listener, event, e)

    __call__ = publish  # a Bus is itself a listener: producers take any callable

    def _failed(self, listener: Listener, event: ev.Event, e: Exception) -> None:
        name = _name(listener)
        n = self.failures.get(name, 0) + 1
        self.failures[name] = n
        if isinstance(e, StreamWriteError):
            if n == 1:
                self.publish(ev.RecordingStopped(reason=e.reason, path=e.path))
            return
        if n == 1:
            self.publish(
                ev.Notice(
                    level="error",
                    message=f"{name} failed on a {type(event).__name__} event: "
                    f"{type(e).__name__}: {e} (later failures are counted, not shown)",
                )
            )


def _name(listener: Listener) -> str:
    owner = getattr(listener, "__self__", None)
    if owner is not None:
        return type(owner).__name__
    return getattr(listener, "__qualname__", None) or type(listener).__name__
