"""The embedded data plane of `devicetrust serve`: the MQTT device gateway (`gateway`), its
TLS server certificate, its message store and its live revocation.

    plane = EmbeddedDataPlane(platform)
    if plane.start():            # False: `[gateway] enabled = false`, or no CA yet
        ...                      # devices connect on `[gateway] host:port`
    plane.stop()

At each start the gateway gets a fresh P-256 key, generated in memory, and a server
certificate from the platform's CA for the public host (`[gateway] public_host`, else the
host of `pki.public_url`), `localhost` and 127.0.0.1, valid `[gateway] server_cert_hours`
(gateway/server_certificate: no clear key is ever on disk). At 2/3 of its lifetime the
watch thread renews it in place: new connections get the new certificate, live ones keep
theirs. Clients are checked in the handshake against the root and issuing CAs; device
authentication then decides (revocation, unit state, policy).

Live revocation: `RevocationWatch` re-reads, every `[gateway] revocation_check_seconds`, the
standing of the connected devices and kicks those that lost it (see gateway/live_revocation).

Persistent sessions (MQTT 5 Session Expiry > 0, 3.1.1 clean session 0) are kept in the
database by `SessionStore` (gateway/session_store) and restored at the next start, with the
QoS 1 feedback they held unacknowledged; the watch thread writes them.

Feedback: `FeedbackDelivery` (runtime/feedback_delivery) publishes the ingest's feedback
queue to connected units -- a unit's queued feedback as soon as it connects (the units
connecting at one moment are gathered into one read, rounds at least 10 ms apart), new
feedback for online units every `FEEDBACK_SECONDS` -- and records the devices' acknowledgments
(status `delivered`). The gateway's hooks only post events; a thread does the database work.
"""

from __future__ import annotations

import ipaddress
import logging
import ssl
import threading
from datetime import timedelta

from sqlalchemy.exc import OperationalError

from devicetrust.domain.errors import DeviceTrustError
from devicetrust.domain.ids import PhysicalId
from devicetrust.gateway import (
    Gateway,
    GatewayConfig,
    GatewayThread,
    IngestSink,
)
from devicetrust.gateway.live_revocation import LiveDevices, RevocationWatch
from devicetrust.gateway.refusal_audit import RefusalAuditor
from devicetrust.gateway.server_certificate import ServerCertificate
from devicetrust.gateway.session_store import SessionStore
from devicetrust.ingest.feedback import FeedbackQueue
from devicetrust.ingest.store import MessageStore
from devicetrust.runtime.container import Platform, data_plane_of
from devicetrust.runtime.feedback_delivery import FeedbackDelivery

_log = logging.getLogger(__name__)
ACTOR = "system:gateway"
# New feedback for online units waits at most this long (a unit's queued feedback goes out
# as soon as it connects, within 10 ms under load). `serve --workers N` sends from other
# processes: polling it is.
FEEDBACK_SECONDS = 1.0


class EmbeddedDataPlane:
    def __init__(self, platform: Platform) -> None:
        self._platform = platform
        self._running: GatewayThread | None = None
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._deliverer: threading.Thread | None = None
        self.certificate: ServerCertificate | None = None
        self.feedback = FeedbackDelivery(FeedbackQueue(platform.db, platform.clock))
        self.refusals = RefusalAuditor(platform.db, platform.clock)
        self.sessions = SessionStore(platform.db, platform.clock)
        self.live = LiveDevices(
            on_connected=self.feedback.unit_connected,
            on_feedback_acked=self.feedback.feedback_acked,
            on_refused=self.refusals.refused,
        )

    @property
    def port(self) -> int | None:
        return self._running.port if self._running is not None else None

    @property
    def running(self) -> GatewayThread | None:
        return self._running

    def start(self) -> bool:
        platform = self._platform
        settings = platform.settings.gateway
        if not settings.enabled:
            return False
        if not platform.pki.list_cas():
            _log.warning("no CA yet (`devicetrust ca init`): the MQTT gateway is not started")
            return False
        told = data_plane_of(platform.settings)
        config = GatewayConfig(
            host=settings.host,
            port=settings.port,
            topic_prefix=settings.topic_prefix,
            token_audience=settings.token_audience or told.mqtt_host,
            message_rate=settings.message_rate,
            message_burst=settings.message_burst,
        )
        names, addresses = _server_names(told.mqtt_host, settings.host)
        self.certificate = ServerCertificate(
            platform.pki, names=names, addresses=addresses,
            lifetime=timedelta(hours=settings.server_cert_hours), actor=ACTOR,
        )
        gateway = Gateway(
            config,
            tls=self.certificate.issue(),
            authenticator=platform.device_auth,
            sink=IngestSink(MessageStore(platform.db, platform.clock)),
            clock=platform.clock,
            hooks=self.live,
            session_listener=self.sessions,
            restored=self.sessions.load(),
        )
        self._running = running = GatewayThread(gateway).start()
        watch = RevocationWatch(
            platform.db,
            self.live,
            kick=running.kick,
            forget=platform.device_auth.clear_caches,
        )
        self._watcher = threading.Thread(
            target=self._watch, args=(watch, settings.revocation_check_seconds),
            name="gateway-revocation-watch", daemon=True,
        )
        self._watcher.start()
        self._deliverer = threading.Thread(
            target=self.feedback.run,
            args=(running.publish_feedback, self._online, self._stop, FEEDBACK_SECONDS),
            name="gateway-feedback", daemon=True,
        )
        self._deliverer.start()
        _log.info("MQTT gateway listening on %s:%d", config.host, running.port)
        return True

    def stop(self) -> None:
        self._stop.set()
        self.feedback.wake()
        for thread in (self._watcher, self._deliverer):
            if thread is not None:
                thread.join(timeout=5)
        if self._running is not None:
            self._running.stop()
            self._running = None
            self.sessions.flush()  # what the last connections reported

    def _online(self) -> list[PhysicalId]:
        return [device.physical_id for device in self.live.snapshot()]

    def _renew_certificate(self) -> None:
        certificate, running = self.certificate, self._running
        if certificate is None or running is None:
            return
        if certificate.renewal_due(self._platform.clock.now()):
            try:
                issued = certificate.renew(running.call)
            except ssl.SSLError as exc:  # the old certificate stays: retried on the next pass
                _log.warning("gateway server certificate renewal failed: %s", exc.reason)
                return
            _log.info("gateway server certificate renewed: serial %s until %s",
                      issued.serial, issued.not_after.isoformat())

    def _watch(self, watch: RevocationWatch, interval: float) -> None:
        while not self._stop.is_set():
            try:
                for verdict in watch.run_once():
                    _log.info("gateway closed %s (%s)", verdict.physical_id, verdict.why)
                self.refusals.flush()  # what authenticated devices were refused: audited
                self.sessions.flush()  # persistent sessions, for the next start
                self._renew_certificate()
            except (OperationalError, DeviceTrustError) as exc:
                _log.warning("revocation check failed, will retry: %s", type(exc).__name__)
            self._stop.wait(interval)

def _server_names(public_host: str, listen_host: str) -> tuple[list[str], list[str]]:
    names, addresses = {"localhost"}, {"127.0.0.1"}
    for host in (public_host, listen_host):
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            names.add(host)
        else:
            if not address.is_unspecified:
                addresses.add(str(address))
    return sorted(names), sorted(addresses)
