"""Webhook endpoints, managed as Standard Webhooks senders do.

- **Secrets.** Each endpoint gets a random secret (`whsec_` + base64 of 32 bytes) when it is
  registered, shown once; it is stored encrypted (Fernet) with a key derived from
  REELROUTE_WEBHOOK_SIGNING_KEY, never in clear, never logged. Endpoints registered before secrets
  were random keep the secret derived from the signing key and their URL until rotated.
- **Rotation.** A new secret replaces the current one; the old one stays valid for an overlap
  window, during which every post carries both signatures (the specification allows several in
  one header), so a receiver can switch without losing a delivery.
- **Disable, enable, delete.** A disabled endpoint gets no new deliveries; its pending ones wait
  (neither sent nor given up) until it is enabled again. Deleting one deletes its deliveries.
- **The default endpoint follows REELROUTE_WEBHOOK_URL**: the endpoint of that URL gets every
  item's events; when the setting changes, the old URL stops being the default.
- **Last answers**: the latest answers of each receiver (status, error, time taken) are kept on
  it, for the admin to see.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from sqlmodel import Session, col, select

from reelroute.models.core.enums import EventType
from reelroute.models.core.errors import Conflict, InvalidInput, NotFound
from reelroute.models.core.settings import SharedConfig
from reelroute.models.core.tables import utcnow
from reelroute.models.outbox.addresses import Resolver, check_url, system_resolver
from reelroute.models.outbox.events import DEFAULT_EVENTS
from reelroute.models.outbox.tables import WebhookEndpoint

LAST_ANSWERS = 10
MAX_OVERLAP_HOURS = 24 * 7


def _key(settings: SharedConfig) -> bytes:
    if settings.webhooks.signing_key is None:
        raise InvalidInput(
            [
                "webhooks: set REELROUTE_WEBHOOK_SIGNING_KEY (32 characters or more) first; "
                "the endpoints' secrets are kept encrypted with it"
            ]
        )
    return settings.webhooks.signing_key.get_secret_value().encode()


def _fernet(settings: SharedConfig) -> Fernet:
    derived = hmac.new(_key(settings), b"reelroute webhook secrets", hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(derived))


def new_secret() -> str:
    """A random Standard Webhooks secret."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def derived_secret(settings: SharedConfig, url: str) -> str:
    """The secret of an endpoint registered before secrets were random (HMAC of its URL)."""
    digest = hmac.new(_key(settings), f"reelroute webhook endpoint {url}".encode(), hashlib.sha256)
    return "whsec_" + base64.b64encode(digest.digest()).decode()


def _seal(settings: SharedConfig, secret: str) -> str:
    return _fernet(settings).encrypt(secret.encode()).decode()


def _open(settings: SharedConfig, sealed: str) -> str:
    try:
        return _fernet(settings).decrypt(sealed.encode()).decode()
    except InvalidToken:
        raise InvalidInput(
            [
                "webhooks: an endpoint's secret cannot be read with this "
                "REELROUTE_WEBHOOK_SIGNING_KEY (the key changed?): rotate the endpoint's secret"
            ]
        ) from None


def signing_secrets(
    endpoint: WebhookEndpoint, settings: SharedConfig, now: datetime | None = None
) -> list[str]:
    """The secrets a post to `endpoint` is signed with now: its own, and the one it replaced
    while the rotation's overlap lasts."""
    now = now or utcnow()
    current = (
        _open(settings, endpoint.secret_encrypted)
        if endpoint.secret_encrypted is not None
        else derived_secret(settings, endpoint.url)
    )
    found = [current]
    if (
        endpoint.previous_secret_encrypted is not None
        and endpoint.previous_secret_until is not None
        and endpoint.previous_secret_until > now
    ):
        found.append(_open(settings, endpoint.previous_secret_encrypted))
    return found


def check_events(events: list[str] | None) -> list[str] | None:
    """The event filter, or InvalidInput naming an unknown event."""
    if events is None:
        return None
    known = {kind.value for kind in EventType}
    unknown = [event for event in events if event not in known]
    if unknown:
        choices = ", ".join(kind.value for kind in EventType)
        raise InvalidInput([f"events: {', '.join(unknown)} unknown; choose from {choices}"])
    return sorted(set(events))


def wants(endpoint: WebhookEndpoint, kind: EventType) -> bool:
    """Whether the endpoint subscribed to `kind`."""
    return kind in (endpoint.events if endpoint.events is not None else DEFAULT_EVENTS)


def register(
    session: Session,
    settings: SharedConfig,
    *,
    url: str,
    events: list[str] | None = None,
    resolver: Resolver = system_resolver,
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its secret (to show once). InvalidInput when the URL is refused (it
    is resolved now: a private address is refused unless allow-listed); Conflict, naming it,
    when the URL is registered already."""
    target = check_url(url, settings.webhooks.networks(), resolver)
    wanted = check_events(events)
    secret = new_secret()
    sealed = _seal(settings, secret)
    existing = find(session, target.url)
    if existing is not None:
        raise Conflict(
            f"webhook_url: {target.url} is registered already (endpoint {existing.id}); change "
            "it with PATCH /api/admin/webhooks/{id}, or rotate its secret"
        )
    endpoint = WebhookEndpoint(url=target.url, events=wanted, secret_encrypted=sealed)
    session.add(endpoint)
    session.flush()
    return endpoint, secret


def find(session: Session, url: str) -> WebhookEndpoint | None:
    """The endpoint registered for `url`, if any."""
    return session.exec(select(WebhookEndpoint).where(WebhookEndpoint.url == url.strip())).first()


def get(session: Session, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    """The endpoint with this id; NotFound otherwise."""
    endpoint = session.get(WebhookEndpoint, endpoint_id, populate_existing=True)
    if endpoint is None:
        raise NotFound(f"no webhook endpoint {endpoint_id}")
    return endpoint


def change(
    session: Session,
    endpoint_id: uuid.UUID,
    *,
    events: list[str] | None = None,
    all_events: bool = False,
    enabled: bool | None = None,
) -> WebhookEndpoint:
    """Change what an endpoint wants (`events`; `all_events` resets to the default set) or
    disable and enable it."""
    endpoint = get(session, endpoint_id)
    if all_events:
        endpoint.events = None
    elif events is not None:
        endpoint.events = check_events(events)
    if enabled is not None:
        endpoint.enabled = enabled
    session.add(endpoint)
    session.flush()
    return endpoint


def rotate(
    session: Session,
    settings: SharedConfig,
    endpoint_id: uuid.UUID,
    *,
    overlap_hours: float = 24.0,
    now: datetime | None = None,
) -> tuple[WebhookEndpoint, str]:
    """A new secret for the endpoint (to show once); the old one keeps signing too for
    `overlap_hours` (0: at once replaced)."""
    if not 0 <= overlap_hours <= MAX_OVERLAP_HOURS:
        raise InvalidInput([f"overlap_hours: use 0 to {MAX_OVERLAP_HOURS}"])
    now = now or utcnow()
    endpoint = get(session, endpoint_id)
    try:
        current = signing_secrets(endpoint, settings, now)[0]
    except InvalidInput:
        current = None  # the key changed: nothing of the old secret can be kept
    secret = new_secret()
    endpoint.secret_encrypted = _seal(settings, secret)
    if current is not None and overlap_hours > 0:
        endpoint.previous_secret_encrypted = _seal(settings, current)
        endpoint.previous_secret_until = now + timedelta(hours=overlap_hours)
    else:
        endpoint.previous_secret_encrypted = endpoint.previous_secret_until = None
    session.add(endpoint)
    session.flush()
    return endpoint, secret


def delete(session: Session, endpoint_id: uuid.UUID) -> None:
    """Delete an endpoint and its deliveries (the groups and items that named it are told
    first, by their owner: `items.forget_endpoint`)."""
    endpoint = get(session, endpoint_id)
    session.delete(endpoint)
    session.flush()


def endpoint_for(session: Session, url: str | None) -> uuid.UUID | None:
    """The registered endpoint of `url` (None for None); InvalidInput when it is unknown."""
    if url is None:
        return None
    endpoint = find(session, url)
    if endpoint is None:
        raise InvalidInput(
            [f"webhook_url: {url} is not registered; register it with POST /api/admin/webhooks"]
        )
    return endpoint.id


def ensure_default(
    session: Session, settings: SharedConfig, resolver: Resolver = system_resolver
) -> WebhookEndpoint | None:
    """Make the endpoint of REELROUTE_WEBHOOK_URL the default one (registered on first use), and
    no other: the flag follows the setting."""
    wanted = settings.webhooks.url.strip() if settings.webhooks.url else None
    default = None
    if wanted is not None:
        default = find(session, wanted)
        if default is None:
            default, _ = register(session, settings, url=wanted, resolver=resolver)
    for endpoint in session.exec(select(WebhookEndpoint).where(col(WebhookEndpoint.is_default))):
        if default is None or endpoint.id != default.id:
            endpoint.is_default = False
            session.add(endpoint)
    if default is not None and not default.is_default:
        default.is_default = True
        session.add(default)
    session.flush()
    return default


def record_answer(
    session: Session,
    endpoint_id: uuid.UUID,
    *,
    status: int | None,
    error: str,
    seconds: float,
    at: datetime,
) -> None:
    """Keep a receiver's answer among its latest ones."""
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:  # deleted meanwhile
        return
    answer: dict[str, Any] = {
        "at": at.isoformat(),
        "status": status,
        "error": error[:300],
        "ms": round(seconds * 1000),
    }
    endpoint.last_answers = [answer, *(endpoint.last_answers or [])][:LAST_ANSWERS]
    session.add(endpoint)
    session.flush()


def list_endpoints(session: Session) -> list[WebhookEndpoint]:
    """Every endpoint, oldest first."""
    query = select(WebhookEndpoint).order_by(col(WebhookEndpoint.created_at))
    return list(session.exec(query).all())
