"""Console sessions: a token pasted once becomes a server-side session bound to that token.

The cookie holds only a random session id (256 bits); the database keeps its SHA-256
hash, the token it stands for and the session's CSRF secret. Every page looks the
session up joined with `access_tokens`, so a revoked or expired token ends its sessions on
the very next request, in every coord process, without any cache to invalidate.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
from aiohttp import web

from coord.auth import Principal

SESSION_COOKIE = "coord_session"
# Double-submit secret of the sign-in form (there is no session to hold one yet).
SIGNIN_COOKIE = "coord_signin"
LANG_COOKIE = "coord_lang"
SESSION_LIFETIME = timedelta(hours=12)


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in browser: who it acts as, and the secret its forms must carry."""

    principal: Principal
    csrf: str


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


# The token must be live (coord.auth.LIVE, on t's columns): `t.expires_at` is the token's
# own expiry, apart from the session's `s.expires_at`.
_LOOKUP = (
    "SELECT s.csrf, t.token_id::text, t.name, t.role, t.regions FROM console_sessions s"
    " JOIN access_tokens t ON t.token_id = s.token_id"
    " WHERE s.session_hash = $1 AND s.expires_at > now()"
    " AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())"
)


async def open_session(pool: asyncpg.Pool, principal: Principal) -> str:
    """Start a session for `principal` (signed in with its token); the new session id."""
    session_id = secrets.token_urlsafe(32)
    async with pool.acquire() as conn, conn.transaction():
        # Sweeping here keeps the table small without a background task.
        await conn.execute("DELETE FROM console_sessions WHERE expires_at <= now()")
        await conn.execute(
            "INSERT INTO console_sessions (session_hash, token_id, csrf, expires_at)"
            " VALUES ($1, $2::uuid, $3, now() + $4::interval)",
            _hash(session_id),
            principal.token_id,
            secrets.token_urlsafe(32),
            SESSION_LIFETIME,
        )
    return session_id


async def find_session(pool: asyncpg.Pool, session_id: str) -> Session | None:
    """The live session with this id; None if unknown, expired, or its token was revoked."""
    if not session_id or len(session_id) > 100:
        return None
    row = await pool.fetchrow(_LOOKUP, _hash(session_id))
    if row is None:
        return None
    principal = Principal(
        token_id=row["token_id"], name=row["name"], role=row["role"], regions=tuple(row["regions"])
    )
    return Session(principal=principal, csrf=row["csrf"])


async def close_session(pool: asyncpg.Pool, session_id: str) -> None:
    """End a session (sign out)."""
    await pool.execute("DELETE FROM console_sessions WHERE session_hash = $1", _hash(session_id))


def same_secret(sent: str | None, expected: str) -> bool:
    """Constant-time comparison of a form's CSRF value with the expected one."""
    return sent is not None and hmac.compare_digest(sent.encode(), expected.encode())


def is_tls(request: web.Request) -> bool:
    """Was the browser's connection TLS (directly, or at a proxy that says so)?"""
    # Only decides whether cookies get `Secure`: a forged header harms its sender alone.
    return request.secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https"


def set_cookie(
    response: web.StreamResponse,
    request: web.Request,
    name: str,
    value: str,
    *,
    max_age: int | None = None,
    http_only: bool = True,
) -> None:
    """Set a console cookie: HttpOnly, SameSite=Strict, path /, Secure behind TLS."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=http_only,
        samesite="Strict",
        secure=is_tls(request),
    )


def clear_cookie(response: web.StreamResponse, request: web.Request, name: str) -> None:
    """Expire a console cookie."""
    response.del_cookie(name, path="/", secure=is_tls(request), samesite="Strict")
