"""The token cache never depends on a notification alone (issue 17): a revocation that
reached the database without one is honoured after the cache lifetime, or at once when the
listening connection is re-established."""

from __future__ import annotations

import asyncpg

from coord.auth import TokenCache, new_token, token_hash


async def _issue(pool: asyncpg.Pool) -> str:
    token = new_token()
    await pool.execute(
        "INSERT INTO access_tokens (token_id, token_hash, name, role, regions, created_by)"
        " VALUES (gen_random_uuid(), $1, 'cache test', 'national', '{}', 'test')",
        token_hash(token),
    )
    return token


async def _revoke_silently(pool: asyncpg.Pool, token: str) -> None:
    # As a row replicated while nobody listened would arrive: no notification.
    await pool.execute(
        "UPDATE access_tokens SET revoked_at = now(), revoked_by = 'test' WHERE token_hash = $1",
        token_hash(token),
    )


async def test_a_cached_token_expires_after_the_lifetime(pool: asyncpg.Pool) -> None:
    """An entry older than the lifetime is read again: the missed revocation holds."""
    now = [100.0]
    cache = TokenCache(pool, lifetime=30.0, clock=lambda: now[0])
    token = await _issue(pool)
    assert await cache.principal(token) is not None
    await _revoke_silently(pool, token)
    now[0] += 29.0
    assert await cache.principal(token) is not None  # still within its lifetime
    now[0] += 1.5
    assert await cache.principal(token) is None


async def test_a_new_listening_connection_clears_the_cache(pool: asyncpg.Pool) -> None:
    """`clear` (called when LISTEN is re-established) drops every entry at once."""
    cache = TokenCache(pool, lifetime=3600.0)
    kept, revoked = await _issue(pool), await _issue(pool)
    assert await cache.principal(kept) is not None
    assert await cache.principal(revoked) is not None
    await _revoke_silently(pool, revoked)
    assert await cache.principal(revoked) is not None  # the notification was missed
    cache.clear()
    assert await cache.principal(revoked) is None
    assert await cache.principal(kept) is not None
