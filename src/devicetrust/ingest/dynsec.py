"""Commands to Mosquitto's dynamic security plugin (`$CONTROL/dynamic-security/v1`).

What 2.0.11 does with certificate identities (found by experiment, see docs/data-plane.md):
`disableClient` needs a dynamic-security client entry for the username (else "Client not
found"), and then closes the live session of every client with that username at once;
but with `use_identity_as_username` the broker skips password authentication, so a
disabled entry does NOT stop the same certificate from connecting again. Keeping a unit out
is therefore the ACL deny entry (at once) and the CRL (once its certificates are revoked);
dynamic security is the kick.

Transport-agnostic: it is given a `publish` function and fed the responses.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable, Sequence
from typing import Any

from devicetrust.domain.errors import DeviceTrustError

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = f"{CONTROL_TOPIC}/response"
_HARMLESS = {"createClient": "Client already exists"}


class DynsecError(DeviceTrustError):
    status = 502


class DynsecControl:
    def __init__(self, publish: Callable[[str, bytes], None], *, timeout: float = 5.0) -> None:
        self._publish = publish
        self._timeout = timeout
        self._lock = threading.Lock()
        self._waiting: dict[str, tuple[threading.Event, list[dict[str, Any]]]] = {}

    def on_response(self, payload: bytes) -> None:
        """Feed a message of `RESPONSE_TOPIC` (from the transport's receive thread)."""
        try:
            responses = json.loads(payload).get("responses", [])
        except (ValueError, AttributeError):
            return
        for response in responses:
            tag = str(response.get("correlationData", ""))
            with self._lock:
                entry = self._waiting.get(tag)
            if entry is not None:
                entry[1].append(response)
                entry[0].set()

    def execute(self, commands: Sequence[dict[str, Any]]) -> None:
        """Run the commands in order and wait for every answer; raises on any error but
        the harmless ones (creating a client that exists)."""
        if not commands:
            return
        tags = [secrets.token_hex(8) for _ in commands]
        events = [threading.Event() for _ in commands]
        sinks: list[list[dict[str, Any]]] = [[] for _ in commands]
        with self._lock:
            for tag, event, sink in zip(tags, events, sinks, strict=True):
                self._waiting[tag] = (event, sink)
        try:
            body = {
                "commands": [
                    {**c, "correlationData": t} for c, t in zip(commands, tags, strict=True)
                ]
            }
            self._publish(CONTROL_TOPIC, json.dumps(body).encode("utf-8"))
            for command, event, sink in zip(commands, events, sinks, strict=True):
                if not event.wait(self._timeout):
                    raise DynsecError(
                        "ingest.dynsec_timeout",
                        f"no answer from dynamic security to {command['command']}",
                    )
                error = sink[0].get("error")
                if error and _HARMLESS.get(command["command"]) != error:
                    raise DynsecError("ingest.dynsec_refused", f"{command['command']}: {error}")
        finally:
            with self._lock:
                for tag in tags:
                    self._waiting.pop(tag, None)

    def disable(self, usernames: Sequence[str]) -> None:
        """Close their live sessions and record them disabled."""
        self.execute([c for u in usernames for c in (_create(u), _cmd("disableClient", u))])

    def kick(self, usernames: Sequence[str]) -> None:
        """Close their live sessions, leaving them enabled (a revoked certificate of a unit
        that stays in service: its new certificate may connect)."""
        self.execute(
            [
                c
                for u in usernames
                for c in (_create(u), _cmd("disableClient", u), _cmd("enableClient", u))
            ]
        )

    def enable(self, usernames: Sequence[str]) -> None:
        self.execute([c for u in usernames for c in (_create(u), _cmd("enableClient", u))])


def _create(username: str) -> dict[str, Any]:
    return {"command": "createClient", "username": username}


def _cmd(command: str, username: str) -> dict[str, Any]:
    return {"command": command, "username": username}
