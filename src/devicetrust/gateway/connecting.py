"""The connecting phase of one device connection: from its CONNECT to CONNACK.

In the order written in `rules` (and nowhere else):

1. `rules.precheck`, before any database work: the connection quota, enhanced
   authentication, a will the gateway cannot keep;
2. the credential (`credentials`): selected from the TLS handshake or the CONNECT, proven by
   the device-auth service in a worker thread (at most `auth_concurrency` at once);
3. `rules.check_identity` against the proven identity (client id, will topic), audited
   through the hooks when refused;
4. `rules.negotiate`, then the session: attached for the proven physical id only (an older
   connection of the same identity is taken over, 0x8E), restored when the device asked
   for it, and the CONNACK (Session Present, the negotiated terms) queued to the device.

`open_session` answers with the opened session, the reason code to refuse with (the
connection writes the refusing CONNACK, 3.1.1: its return code), or None when the device
went away while it was authenticated. Never attaches a session
to an identity the credential did not prove, and never lets a refusal say more than its
code (the precise reason goes to the log and, through deviceauth, the audit log).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from devicetrust.deviceauth import AuthenticatedDevice, AuthRefused

from . import rules
from .codec import Connack, Connect, ReasonCode, encode
from .credentials import authenticate, refusal_code, select_credential
from .environment import Environment
from .feedback import FeedbackChannel
from .sessions import LiveConnection

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Opened:
    """A device accepted: CONNACK Success is queued, its session attached."""

    device: AuthenticatedDevice
    terms: rules.Terms
    feedback: FeedbackChannel


async def open_session(
    env: Environment,
    connect: Connect,
    writer: asyncio.StreamWriter,
    connection: LiveConnection,
    send: Callable[[bytes], None],
) -> Opened | ReasonCode | None:
    """Steps 1-4 for `connection`, whose bytes for the device go through `send`."""
    proven = await prove_identity(env, connect, writer)
    if isinstance(proven, ReasonCode):
        return proven
    if writer.is_closing():
        return None
    return attach_session(env, connect, proven, connection, send)


async def prove_identity(
    env: Environment, connect: Connect, writer: asyncio.StreamWriter
) -> AuthenticatedDevice | ReasonCode:
    """Steps 1-3: the device the credential proves, or the reason code to refuse with."""
    refusal = rules.precheck(connect, env.config, env.open_connections())
    if refusal is not None:
        return refusal
    ssl_object = writer.get_extra_info("ssl_object")
    peer = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    address = writer.get_extra_info("peername")
    source = str(address[0]) if isinstance(address, tuple) and address else None
    presented = select_credential(connect, peer, env.config.token_audience, source)
    if isinstance(presented, ReasonCode):
        return presented
    try:
        device = await authenticate(env.auth, presented, env.config.token_audience, env.auth_limit)
    except AuthRefused as e:
        _log.info("mqtt connect refused: %s", e.code)
        return refusal_code(presented, e)
    except Exception:
        # The authentication service itself failed (database down, ...): the device is
        # told the server is unavailable (3.1.1: return code 3) and may retry; no
        # session is opened. Logged with its traceback, not hidden.
        _log.exception("mqtt connect: device authentication failed to run")
        return ReasonCode.SERVER_UNAVAILABLE
    refusal = rules.check_identity(connect, device, env.layout)
    if refusal is not None:
        what = (
            f"client id {connect.client_id[:64]!r}"
            if refusal is ReasonCode.CLIENT_IDENTIFIER_NOT_VALID
            else f"will topic {connect.will.topic[:128] if connect.will else ''!r}"
        )
        env.hooks.refused(device.physical_id, refusal, what)
        return refusal
    return device


def attach_session(
    env: Environment,
    connect: Connect,
    device: AuthenticatedDevice,
    connection: LiveConnection,
    send: Callable[[bytes], None],
) -> Opened:
    """Step 4, for a proven device: negotiate, take over or restore its session, and queue
    the CONNACK (through `send`, before any feedback the session resumes)."""
    version = connect.protocol_version
    terms = rules.negotiate(connect, device, env.config)
    session, present, took_over = env.sessions.attach(
        device.physical_id, connection, clean_start=connect.clean_start, expiry=terms.session_expiry
    )
    feedback = FeedbackChannel(
        session,
        device.physical_id,
        env.layout.feedback(device.physical_id),
        version,
        send_window=terms.send_window,
        client_max_packet=terms.client_max_packet,
        counters=env.counters,
        hooks=env.hooks,
        send=send,
    )
    properties = rules.connack_properties(connect, terms, env.config)
    send(encode(Connack(session_present=present, properties=properties), version))
    env.counters.connections_authenticated += 1
    env.counters.takeovers += took_over
    return Opened(device, terms, feedback)
