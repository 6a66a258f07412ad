"""Webhook subscriptions: the secret is shown once and stored only sealed; changes are audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from devicetrust.domain.clock import FixedClock
from devicetrust.domain.errors import ConfigurationError, InvalidInput, NotFound
from devicetrust.events import AuditLog, WebhookService
from devicetrust.events.webhooks import secret_aad, validate_url
from devicetrust.store.database import Database
from devicetrust.store.models import AuditEntryRow, OutboxRow, WebhookRow
from devicetrust.vault import Vault

URL = "https://erp.example.com/hooks/devicetrust?tenant=7"


@pytest.fixture
def hooks(db: Database, clock: FixedClock, vault: Vault) -> WebhookService:
    return WebhookService(db, clock, vault)


def _all_row_text(db: Database) -> str:
    """Every value of every row of the tables a secret could leak into, as text."""
    out: list[str] = []
    with db.engine.connect() as conn:
        for table in ("webhooks", "outbox", "audit_log", "webhook_deliveries"):
            for row in conn.execute(text(f"SELECT * FROM {table}")):
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        out.append(bytes(value).decode("latin-1"))
                    else:
                        out.append(str(value))
    return "\n".join(out)


def test_add_returns_the_secret_once_and_stores_it_only_sealed(
    hooks: WebhookService, db: Database, vault: Vault
) -> None:
    hook, secret = hooks.add(URL, ["device.*", "identity.created"], actor="op:alice")
    assert secret.startswith("whsec_") and len(secret) == len("whsec_") + 43
    assert hook.event_types == ("device.*", "identity.created")
    assert "secret" not in hook.to_json() and secret not in str(hook.to_json())

    dump = _all_row_text(db)
    assert secret not in dump
    assert secret.removeprefix("whsec_") not in dump
    with db.transaction() as session:
        sealed = session.execute(select(WebhookRow.secret_sealed)).scalar_one()
    assert secret.encode() not in sealed
    assert vault.open(sealed, aad=secret_aad(hook.webhook_id)) == secret.encode()
    # The sealed value is bound to its row: it does not open as another webhook's secret.
    other = hooks.add("https://other.example.com/", actor="op:alice")[0]
    with pytest.raises(ConfigurationError) as err:
        vault.open(sealed, aad=secret_aad(other.webhook_id))
    assert err.value.code == "vault.unseal_failed"


def test_add_and_delete_are_audited_with_an_event_in_the_same_transaction(
    hooks: WebhookService, db: Database
) -> None:
    hook, _ = hooks.add(URL, actor="op:alice")
    hooks.delete(hook.webhook_id, actor="op:bob")
    with db.transaction() as session:
        events = session.execute(select(OutboxRow).order_by(OutboxRow.id)).scalars().all()
        audit = session.execute(select(AuditEntryRow).order_by(AuditEntryRow.seq)).scalars().all()
        remaining = session.execute(select(func.count()).select_from(WebhookRow)).scalar_one()
    assert [e.type for e in events] == ["webhook.created", "webhook.deleted"]
    assert [(a.action, a.actor, a.subject) for a in audit] == [
        ("webhook.created", "op:alice", hook.webhook_id),
        ("webhook.deleted", "op:bob", hook.webhook_id),
    ]
    # The query string (which may carry a receiver's token) stays out of the permanent record.
    assert events[0].payload["url"] == "https://erp.example.com/hooks/devicetrust?..."
    assert "tenant=7" not in str(audit[0].details)
    assert remaining == 0
    assert AuditLog(db).verify().ok


def test_list_get_and_delete(hooks: WebhookService, clock: FixedClock) -> None:
    first, _ = hooks.add("https://a.example.com/x", actor="op")
    clock.advance(timedelta(seconds=1))
    second, _ = hooks.add("http://b.example.com:8080", ["*"], actor="op")
    assert [h.webhook_id for h in hooks.list()] == [first.webhook_id, second.webhook_id]
    got = hooks.get(second.webhook_id.upper())
    assert got.url == "http://b.example.com:8080/"
    assert got.event_types == ("*",)
    hooks.delete(first.webhook_id, actor="op")
    assert [h.webhook_id for h in hooks.list()] == [second.webhook_id]
    with pytest.raises(NotFound) as err:
        hooks.get(first.webhook_id)
    assert err.value.code == "webhook.not_found"
    with pytest.raises(NotFound):
        hooks.delete(first.webhook_id, actor="op")
    with pytest.raises(InvalidInput) as bad:
        hooks.get("not-a-uuid")
    assert bad.value.code == "webhook.invalid_id"


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("", "webhook.invalid_url"),
        ("ftp://example.com/x", "webhook.url_scheme_not_allowed"),
        ("file:///etc/passwd", "webhook.url_scheme_not_allowed"),
        ("javascript:alert(1)", "webhook.url_scheme_not_allowed"),
        ("example.com/hook", "webhook.url_scheme_not_allowed"),
        ("https://", "webhook.invalid_url"),
        ("https:///path-only", "webhook.invalid_url"),
        ("https://user:pw@example.com/", "webhook.url_has_credentials"),
        ("https://example.com:99999/", "webhook.invalid_url"),
        ("https://example.com:0/", "webhook.invalid_url"),
        ("https://example.com/a b", "webhook.invalid_url"),
        ("https://example.com/\n", "webhook.invalid_url"),
        ("https://exämple.com/", "webhook.invalid_url"),
        ("https://example.com/#frag", "webhook.invalid_url"),
        ("https://example.com/" + "a" * 2048, "webhook.url_too_long"),
    ],
)
def test_bad_url_is_refused_with_a_precise_code(url: str, code: str) -> None:
    with pytest.raises(InvalidInput) as err:
        validate_url(url)
    assert err.value.code == code


@pytest.mark.parametrize(
    ("url", "clean"),
    [
        ("HTTPS://Example.com", "https://Example.com/"),
        ("http://127.0.0.1:8080/in?x=1", "http://127.0.0.1:8080/in?x=1"),
        ("https://[::1]:8443/hook", "https://[::1]:8443/hook"),
    ],
)
def test_good_urls_are_kept_with_a_canonical_scheme(url: str, clean: str) -> None:
    assert validate_url(url) == clean


def test_bad_url_changes_nothing(hooks: WebhookService, db: Database) -> None:
    with pytest.raises(InvalidInput) as err:
        hooks.add("ftp://example.com/", actor="op")
    assert err.value.code == "webhook.url_scheme_not_allowed"
    _assert_nothing_written(db)


def test_unknown_event_type_is_refused_and_nothing_is_written(
    hooks: WebhookService, db: Database
) -> None:
    with pytest.raises(InvalidInput) as err:
        hooks.add(URL, ["device.replaced", "device.exploded"], actor="op")
    assert err.value.code == "webhook.unknown_event_type"
    _assert_nothing_written(db)


def _assert_nothing_written(db: Database) -> None:
    with db.transaction() as session:
        for model in (WebhookRow, OutboxRow, AuditEntryRow):
            assert session.execute(select(func.count()).select_from(model)).scalar_one() == 0
