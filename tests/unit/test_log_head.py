"""Waiting for positions in the LogHead, without a database (resolve() is fed directly)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from events.domain.errors import SequencingTimeout
from events.store.log_head import LogHead


async def _no_connection() -> asyncpg.Connection:
    raise AssertionError("these tests never connect")


async def test_a_retry_arriving_as_the_first_waiter_leaves_is_answered() -> None:
    """A second wait on a seq, begun just after its first waiter was woken, gets the position.

    (It used to register a new future that the first waiter's clean-up then removed, so
    nothing could ever resolve it: an idempotent retry hung until the timeout.)
    """
    head = LogHead(_no_connection)
    first = asyncio.create_task(head.position_of(3, 5.0))
    await asyncio.sleep(0)
    head.resolve([(10, 3)])
    retry = asyncio.create_task(head.position_of(3, 0.5))  # runs before `first` resumes
    assert await first == 10
    assert await retry == 10


async def test_waiters_of_one_seq_share_it_and_a_timeout_does_not_strand_the_rest() -> None:
    """Two waiters of one seq: the first times out, the second is still answered."""
    head = LogHead(_no_connection)
    short = asyncio.create_task(head.position_of(7, 0.05))
    long = asyncio.create_task(head.position_of(7, 5.0))
    with pytest.raises(SequencingTimeout):
        await short
    head.resolve([(42, 7)])
    assert await long == 42


async def test_positions_numbered_before_anyone_waits_are_remembered() -> None:
    """The sequencer may number a seq before its request asks: no wait then."""
    head = LogHead(_no_connection)
    head.resolve([(5, 1), (6, 2)])
    assert await head.position_of(2, 0.01) == 6
    assert head.position == 6
