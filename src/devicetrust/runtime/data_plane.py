"""The embedded data plane of `devicetrust serve`: the MQTT device gateway (`gateway`), its
TLS server certificate, its message store and its live revocation.

    plane = EmbeddedDataPlane(platform)
    if plane.start():            # False: `[gateway] enabled = false`, or no CA yet
        ...                      # devices connect on `[gateway] host:port`
    plane.stop()

At each start the gateway gets a fresh P-256 key, generated in memory, and a server
certificate from the platform's CA for the public host (`[gateway] public_host`, else the
host of `pki.public_url`), `localhost` and 127.0.0.1. The key reaches the TLS context
through a file encrypted with a random one-time password that is deleted at once: no clear
key is ever on disk. Clients are checked in the handshake against the root and issuing CAs;
device authentication then decides (revocation, unit state, policy).

Live revocation: `RevocationWatch` re-reads, every `[gateway] revocation_check_seconds`, the
standing of the connected devices and kicks those that lost it (see gateway/live_revocation).

Feedback: `FeedbackDelivery` (runtime/feedback_delivery) publishes the ingest's feedback
queue to connected units -- a unit's queued feedback as soon as it connects, new feedback
for online units every `FEEDBACK_SECONDS` -- and records the devices' acknowledgments
(status `delivered`). The gateway's hooks only post events; a thread does the database work.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
import ssl
import tempfile
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy.exc import OperationalError

from devicetrust.domain.errors import DeviceTrustError
from devicetrust.domain.ids import PhysicalId
from devicetrust.gateway import (
    Gateway,
    GatewayConfig,
    GatewayThread,
    IngestSink,
    server_tls_context,
)
from devicetrust.gateway.live_revocation import LiveDevices, RevocationWatch
from devicetrust.gateway.refusal_audit import RefusalAuditor
from devicetrust.ingest.feedback import FeedbackQueue
from devicetrust.ingest.store import MessageStore
from devicetrust.pki import CaRole, Profile
from devicetrust.runtime.container import Platform, data_plane_of
from devicetrust.runtime.feedback_delivery import FeedbackDelivery

_log = logging.getLogger(__name__)
ACTOR = "system:gateway"
# New feedback for online units waits at most this long (a unit's queued feedback goes out
# as soon as it connects). `serve --workers N` sends from other processes: polling it is.
FEEDBACK_SECONDS = 1.0


class EmbeddedDataPlane:
    def __init__(self, platform: Platform) -> None:
        self._platform = platform
        self._running: GatewayThread | None = None
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._deliverer: threading.Thread | None = None
        self.feedback = FeedbackDelivery(FeedbackQueue(platform.db, platform.clock))
        self.refusals = RefusalAuditor(platform.db, platform.clock)
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
        )
        gateway = Gateway(
            config,
            tls=self._tls(told.mqtt_host),
            authenticator=platform.device_auth,
            sink=IngestSink(MessageStore(platform.db, platform.clock)),
            clock=platform.clock,
            hooks=self.live,
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

    def _online(self) -> list[PhysicalId]:
        return [device.physical_id for device in self.live.snapshot()]

    def _watch(self, watch: RevocationWatch, interval: float) -> None:
        while not self._stop.is_set():
            try:
                for verdict in watch.run_once():
                    _log.info("gateway closed %s (%s)", verdict.physical_id, verdict.why)
                self.refusals.flush()  # what authenticated devices were refused: audited
            except (OperationalError, DeviceTrustError) as exc:
                _log.warning("revocation check failed, will retry: %s", type(exc).__name__)
            self._stop.wait(interval)

    def _tls(self, public_host: str) -> ssl.SSLContext:
        platform = self._platform
        key = ec.generate_private_key(ec.SECP256R1())
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([]))
            .sign(key, hashes.SHA256())
            .public_bytes(serialization.Encoding.PEM)
        )
        names, addresses = _server_names(public_host, platform.settings.gateway.host)
        issued = platform.pki.issue_from_csr(
            csr, None, Profile.SERVER, actor=ACTOR, dns_names=names, ip_addresses=addresses
        )
        password = secrets.token_bytes(32)
        cas = [c for c in platform.pki.list_cas() if c.role in (CaRole.ROOT, CaRole.ISSUING)]
        with tempfile.TemporaryDirectory(prefix="devicetrust-gateway-") as folder:
            base = Path(folder)
            (base / "chain.pem").write_text(issued.pem + platform.pki.chain_pem(CaRole.ISSUING))
            (base / "key.pem").write_bytes(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.BestAvailableEncryption(password),
                )
            )
            (base / "clients.pem").write_text("".join(c.pem for c in cas))
            return server_tls_context(
                base / "chain.pem", base / "key.pem", base / "clients.pem", key_password=password
            )


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
