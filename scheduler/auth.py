"""Callers from JWTs: ``sub`` is the owner; ``cognito:groups`` containing ``admin`` = admin.

Locally (``vp serve --auth-secret S``, ``S`` at least :data:`MIN_SECRET_BYTES` bytes) bearer
tokens are HS256 JWTs signed with ``S``; no other algorithm is accepted (no ``none``, no key
confusion). Every token must carry ``sub``, a numeric ``iat`` and a numeric ``exp`` at most
:data:`MAX_TOKEN_LIFETIME` seconds after ``iat`` (a leaked token cannot live for years);
``nbf``, when present, must be numeric too. Audiences are exact: a bearer token carries no
``aud`` at all, a stream token exactly the string ``vp-stream`` (a list is neither). On AWS
the Cognito authorizer has verified the token already and the Lambda handler passes its
claims to :func:`caller_from_claims`.

Server-sent events cannot send an ``Authorization`` header (``EventSource`` has no way to),
so the console first trades its bearer token for a *stream token* (``POST
/v1/stream-token``): an HS256 JWT with audience ``vp-stream`` that lives
:data:`STREAM_TOKEN_TTL` seconds and is accepted only as the ``token`` query parameter of the
two event-stream endpoints — never as a bearer token, so a leaked one cannot launch or cancel
anything, and it expires quickly. A stream ends when its token expires (with an ``expired``
event): the console then fetches a new token and resumes, so a revoked bearer token stops
streams within one stream-token lifetime. (Query strings reach access logs; ``vp serve`` turns
uvicorn's access log off and logs paths without them.)

Artifact downloads (``vp serve``) work the same way: a listing carries, per artifact, a
URL with an *artifact token* (audience ``vp-artifact``, :data:`ARTIFACT_TOKEN_TTL` seconds)
naming the owner, the VP and the artifact, so an ``<audio>`` element or a download link can
fetch it — the local counterpart of a presigned S3 URL. It opens that one file only.

``python -m scheduler.auth --secret S --sub alice [--admin] [--ttl SECONDS]`` mints a local
token for trying the API and the console.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping, Sequence
from typing import Any

import jwt

from scheduler.errors import Unauthorized
from scheduler.service import Caller

ADMIN_GROUP = "admin"
GROUPS_CLAIM = "cognito:groups"
STREAM_AUDIENCE = "vp-stream"
STREAM_TOKEN_TTL = 300
ARTIFACT_AUDIENCE = "vp-artifact"
ARTIFACT_TOKEN_TTL = 300
MAX_TOKEN_LENGTH = 8192
MAX_SUB_LENGTH = 256
MIN_SECRET_BYTES = 32  # HS256 needs a key as long as its hash (RFC 7518 §3.2)
MAX_TOKEN_LIFETIME = 24 * 3600  # between iat and exp
_NUMERIC_CLAIMS = ("iat", "exp", "nbf")


def _groups(value: Any) -> list[str]:
    """``cognito:groups`` as a list: JWTs carry a list; API Gateway passes ``"[a b]"``
    (whitespace-separated: a comma is part of a group name, so ``"[x,admin]"`` is no admin)."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("[") and text.endswith("]"):
            text = text[1:-1]
        return text.split()
    if isinstance(value, list | tuple):
        return [str(g) for g in value]
    return []


def caller_from_claims(claims: Mapping[str, Any]) -> Caller:
    """The :class:`Caller` that verified ``claims`` describe; :class:`Unauthorized` if no sub."""
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > MAX_SUB_LENGTH or not sub.isprintable():
        raise Unauthorized("the token has no usable 'sub' claim")
    return Caller(owner=sub, admin=ADMIN_GROUP in _groups(claims.get(GROUPS_CLAIM)))


class Authenticator:
    """Verifies bearer tokens and issues/verifies stream tokens with one HS256 secret."""

    def __init__(
        self, secret: str, *, leeway: float = 30.0, stream_ttl: int = STREAM_TOKEN_TTL
    ) -> None:
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"the auth secret must be at least {MIN_SECRET_BYTES} bytes")
        if stream_ttl < 1:
            raise ValueError("stream_ttl must be at least 1 second")
        self._secret = secret
        self.leeway = leeway
        self.stream_ttl = stream_ttl

    def _decode(self, token: str, audience: str | None) -> dict[str, Any]:
        """Verify ``token``: signature, claims (see the module docstring) and audience —
        ``None`` for a bearer token (no ``aud``), :data:`STREAM_AUDIENCE` for a stream one."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise Unauthorized("missing or oversized token")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                leeway=self.leeway,
                # aud is checked below, exactly (PyJWT accepts a list containing it).
                options={"require": ["sub", "exp", "iat"], "verify_aud": False},
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"invalid token: {type(exc).__name__}") from None
        for name in _NUMERIC_CLAIMS:
            value = claims.get(name)
            if name in claims and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise Unauthorized(f"invalid token: '{name}' is not a number")
        if claims["exp"] - claims["iat"] > MAX_TOKEN_LIFETIME:
            raise Unauthorized(f"invalid token: lives longer than {MAX_TOKEN_LIFETIME} s")
        if audience is None and "aud" in claims:
            raise Unauthorized("a bearer token carries no audience (is this a stream token?)")
        if audience is not None and claims.get("aud") != audience:
            raise Unauthorized("invalid token: wrong audience")
        return claims

    def caller_from_header(self, header: str | None) -> Caller:
        """``Authorization: Bearer <JWT>`` → Caller; :class:`Unauthorized` otherwise."""
        if not header:
            raise Unauthorized("missing Authorization header")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("the Authorization header must be 'Bearer <token>'")
        return caller_from_claims(self._decode(token.strip(), None))

    def issue_stream_token(self, caller: Caller, ttl: int | None = None) -> str:
        ttl = self.stream_ttl if ttl is None else ttl
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": caller.owner,
            "aud": STREAM_AUDIENCE,
            "iat": now,
            "exp": now + ttl,
        }
        if caller.admin:
            claims[GROUPS_CLAIM] = [ADMIN_GROUP]
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def issue_artifact_token(
        self, caller: Caller, vp_id: str, name: str, ttl: int = ARTIFACT_TOKEN_TTL
    ) -> str:
        """A token that downloads artifact ``name`` of ``vp_id`` for ``caller``, only."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": caller.owner,
            "aud": ARTIFACT_AUDIENCE,
            "iat": now,
            "exp": now + ttl,
            "vp_id": vp_id,
            "artifact": name,
        }
        if caller.admin:
            claims[GROUPS_CLAIM] = [ADMIN_GROUP]
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def artifact_caller(self, token: str | None, vp_id: str, name: str) -> Caller:
        """The Caller of an artifact token issued for exactly ``vp_id``/``name``."""
        claims = self._decode(token or "", ARTIFACT_AUDIENCE)
        if claims.get("vp_id") != vp_id or claims.get("artifact") != name:
            raise Unauthorized("the token is for another artifact")
        if float(claims["exp"]) <= time.time():
            raise Unauthorized("the artifact token has expired")
        return caller_from_claims(claims)

    def caller_from_stream_token(self, token: str | None) -> Caller:
        return self.stream_session(token)[0]

    def stream_session(self, token: str | None) -> tuple[Caller, float]:
        """A stream token → its Caller and when it expires (epoch seconds): the stream it
        opens ends then. No leeway: this server issued it, so there is no clock skew."""
        claims = self._decode(token or "", STREAM_AUDIENCE)
        expires_at = float(claims["exp"])
        if expires_at <= time.time():  # we issued it: no clock skew to allow for
            raise Unauthorized("the stream token has expired")
        return caller_from_claims(claims), expires_at


def mint_token(secret: str, sub: str, *, admin: bool = False, ttl: int = 3600) -> str:
    """A local bearer token (what Cognito issues on AWS)."""
    now = int(time.time())
    claims: dict[str, Any] = {"sub": sub, "iat": now, "exp": now + ttl}
    if admin:
        claims[GROUPS_CLAIM] = [ADMIN_GROUP]
    return jwt.encode(claims, secret, algorithm="HS256")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scheduler.auth", description=mint_token.__doc__
    )
    parser.add_argument("--secret", required=True)
    parser.add_argument("--sub", required=True)
    parser.add_argument("--admin", action="store_true")
    parser.add_argument(
        "--ttl", type=int, default=3600, help=f"seconds, at most {MAX_TOKEN_LIFETIME}"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.ttl <= MAX_TOKEN_LIFETIME:
        parser.error(f"--ttl must be 1 to {MAX_TOKEN_LIFETIME} seconds")
    print(mint_token(args.secret, args.sub, admin=args.admin, ttl=args.ttl))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
