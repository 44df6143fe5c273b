"""Errors raised by the event store. The HTTP layer maps each to a problem response."""

from __future__ import annotations


class EventStoreError(Exception):
    """Base class of every error the event store raises on purpose."""


class WrongExpectedVersion(EventStoreError):
    """The stream's version is not the one the writer expected; nothing was written."""

    def __init__(self, stream_id: str, expected: int | str, actual: int) -> None:
        super().__init__(
            f"stream {stream_id!r} is at version {actual}, the writer expected {expected}"
        )
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual


class DuplicateEventId(EventStoreError):
    """An event id is already stored with other content or in another place; nothing was written.

    The message never names the stream holding the id: that stream may belong to
    another region. `holder` names it for callers that check who may learn it.
    """

    def __init__(self, event_id: str, detail: str, *, holder: str | None = None) -> None:
        super().__init__(f"event id {event_id} is already stored: {detail}")
        self.event_id = event_id
        self.detail = detail
        self.holder = holder


class InvalidStreamId(EventStoreError, ValueError):
    """A stream id that does not follow `category-identifier` over `[A-Za-z0-9._:-]`."""


class SequencingTimeout(EventStoreError):
    """The append committed, but no sequencer gave it a global position in time.

    The events are stored and will be sequenced; a retry with the same event ids
    is idempotent and returns the positions.
    """
