"""The composition root: builds the database, clock and services from `Settings`.

Interfaces (API, CLI, `serve`) get their services here and nowhere else; services never
read configuration themselves.
"""

from __future__ import annotations

import os
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from urllib.parse import urlsplit

from devicetrust.attestation import AttestationService
from devicetrust.auth import ApiKeyService
from devicetrust.deviceauth import DeviceAuthService, device_verifier
from devicetrust.deviceauth.policy_limits import PolicyLimits
from devicetrust.domain.clock import Clock, SystemClock
from devicetrust.domain.errors import ConfigurationError, DeviceTrustError
from devicetrust.domain.ids import PhysicalId
from devicetrust.events import AuditLog, Dispatcher, WebhookService
from devicetrust.identity import IdentityService
from devicetrust.pki import AutoRevoker, Keyring, PkiPolicy, PkiService, Profile
from devicetrust.pki.keys import (
    KekPassword,
    KeyPassword,
    PassphrasePassword,
    PinFromEnv,
    Pkcs11Config,
    Pkcs11Connection,
)
from devicetrust.pki.verify import DeviceCertVerifier
from devicetrust.policy import (
    CertificateLifetimeCaps,
    KeyAdmission,
    PolicyService,
    SourceNetworks,
)
from devicetrust.provisioning import (
    DataPlane,
    ProvisioningService,
    SymmetricKeyMethod,
    X509Method,
)
from devicetrust.provisioning.boot_reattest import BootReattestation
from devicetrust.provisioning.ratelimit import FailureLimiter
from devicetrust.provisioning.reenroll import CertificateReenrollment
from devicetrust.provisioning.tpm import EkPolicy, TpmAttestation, ek_policy
from devicetrust.runtime.settings import Settings
from devicetrust.store.database import Database
from devicetrust.store.migrate import upgrade
from devicetrust.vault import LazyVault, Vault

KEK_ENV = "DEVICETRUST_KEK"
CA_PASSPHRASE_ENV = "DEVICETRUST_CA_PASSPHRASE"  # noqa: S105 - a variable name, not a secret


class Platform:
    """Everything a running devicetrust needs, wired once."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        vault: Vault | None = None,
        migrate: bool = True,
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        if settings.database.url is None:
            settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.db = Database(settings.database_url, pool_size=settings.database.pool_size)
        if migrate:
            upgrade(self.db)
        self._vault = vault
        # Services get a vault that loads the KEK only when a secret is sealed or opened.
        self._sealer = LazyVault(lambda: self.vault)
        self._pkcs11: Pkcs11Connection | None = None

    @cached_property
    def identity(self) -> IdentityService:
        return IdentityService(self.db, self.clock, name_grace=self.settings.identity.name_grace)

    @cached_property
    def api_keys(self) -> ApiKeyService:
        return ApiKeyService(self.db, self.clock)

    @cached_property
    def audit(self) -> AuditLog:
        return AuditLog(self.db)

    @cached_property
    def webhooks(self) -> WebhookService:
        return WebhookService(self.db, self.clock, self._sealer)

    @cached_property
    def dispatcher(self) -> Dispatcher:
        hooks = self.settings.webhooks
        return Dispatcher(
            self.db,
            self.clock,
            self._sealer,
            max_attempts=hooks.max_attempts,
            base_backoff=timedelta(seconds=hooks.base_backoff_seconds),
            max_backoff=timedelta(seconds=hooks.max_backoff_seconds),
            timeout=timedelta(seconds=hooks.timeout_seconds),
        )

    @cached_property
    def pki(self) -> PkiService:
        """The CA. Its key files are protected by the KEK (default) or an operator
        passphrase; with `pki.pkcs11_module` set, new CA keys are created in the token."""
        cfg = self.settings.pki
        self._pkcs11 = (
            Pkcs11Connection(
                Pkcs11Config(module=cfg.pkcs11_module, pin=PinFromEnv(cfg.pkcs11_pin_env))
            )
            if cfg.pkcs11_module is not None
            else None
        )
        lifetimes = PkiPolicy().lifetimes
        lifetimes[Profile.DEVICE] = timedelta(hours=cfg.device_cert_hours)
        keyring = Keyring(
            self.settings.pki_key_dir,
            password=self._ca_password(),
            pkcs11=self._pkcs11,
            pkcs11_token=cfg.pkcs11_token,
        )
        policy = PkiPolicy(public_url=self.settings.pki_public_url, lifetimes=lifetimes)
        return PkiService(self.db, self.clock, keyring, policy=policy)

    @cached_property
    def provisioning(self) -> ProvisioningService:
        """Enrollments, attestation and allocation; devices get their operational
        certificate from `pki` and their logical identity from `identity`."""
        return ProvisioningService(
            self.db,
            self.clock,
            self.identity,
            self.pki,
            self._sealer,
            methods=(
                SymmetricKeyMethod(self._sealer),
                X509Method(self.pki, self.clock),
                # needs tpm2-pytss (extra "tpm") only when used
                TpmAttestation(
                    tpm_ek_policy_of(self.settings),
                    clock=self.clock,
                    quote_selection=self.attestation.quote_selection,
                ),
            ),
            data_plane=data_plane_of(self.settings),
            limiter=FailureLimiter(
                self.clock,
                burst=self.settings.provisioning.attempt_burst,
                refill_per_minute=self.settings.provisioning.attempt_refill_per_minute,
            ),
            lifetime_cap=CertificateLifetimeCaps(self.policy),
            source_check=SourceNetworks(self.policy),
            admission=KeyAdmission(self.policy, self.attestation),
        )

    @cached_property
    def reenrollment(self) -> CertificateReenrollment:
        """EST simplereenroll by the device's current certificate (mutual TLS)."""
        return CertificateReenrollment(
            self.db,
            self.clock,
            self.pki,
            lifetime_cap=CertificateLifetimeCaps(self.policy),
            source_check=SourceNetworks(self.policy),
            admission=KeyAdmission(self.policy, self.attestation),
        )

    def auto_revoker(self) -> AutoRevoker:
        """The CA following the identity registry; certificates it re-issues after a rename
        or transfer are capped by the unit's security policy like provisioning's."""
        caps = CertificateLifetimeCaps(self.policy)
        return AutoRevoker(
            self.pki, lifetime_cap=lambda pid: caps(PhysicalId(pid), None).max_lifetime
        )

    @cached_property
    def attestation(self) -> AttestationService:
        """Measured boot: golden measurements and the verdicts on units' TPM quotes."""
        return AttestationService(self.db, self.clock)

    @cached_property
    def boot_reattestation(self) -> BootReattestation:
        """Provisioned TPM units quoting their boot PCRs again (the device API)."""
        return BootReattestation(self.db, self.clock, self.attestation)

    @cached_property
    def policy(self) -> PolicyService:
        """Security policy per fleet, enrollment and device; relaxations; posture."""
        return PolicyService(self.db, self.clock)

    @cached_property
    def device_auth(self) -> DeviceAuthService:
        """How every entry point judges a device: mTLS (the CA's verifier; none until a CA
        hierarchy exists), HMAC tokens, JWTs, under the unit's effective security policy."""
        return DeviceAuthService(
            self.db,
            self.clock,
            self._sealer,
            cert_verifier=self.device_cert_verifier(),
            limits_for=PolicyLimits(self.policy, self.clock),
            failure_limiter=FailureLimiter(self.clock),
        )

    def device_cert_verifier(self) -> DeviceCertVerifier | None:
        """A verifier over the CA's current trust material; None before `ca init`. Build a
        new one after a CA rotation (`device_auth.use_cert_verifier`)."""
        try:
            return device_verifier(self.pki, self.clock)
        except DeviceTrustError:
            return None

    def _ca_password(self) -> KeyPassword:
        if self.settings.pki.key_protection == "passphrase":
            passphrase = os.environ.get(CA_PASSPHRASE_ENV)
            if not passphrase:
                raise ConfigurationError(
                    "config.ca_passphrase_missing",
                    f"pki.key_protection is 'passphrase': set {CA_PASSPHRASE_ENV}",
                )
            return PassphrasePassword(passphrase)
        return KekPassword(self.vault)

    @property
    def vault(self) -> Vault:
        """The key-encryption key for secrets at rest; refuses to invent one."""
        if self._vault is None:
            self._vault = load_vault(self.settings)
        return self._vault

    def close(self) -> None:
        if "dispatcher" in self.__dict__:
            self.dispatcher.close()
        if "pki" in self.__dict__:
            self.pki.close()
        if self._pkcs11 is not None:
            self._pkcs11.close()
        if self._vault is not None:
            self._vault.close()
        self.db.dispose()


def data_plane_of(settings: Settings) -> DataPlane:
    """What a provisioned device is told (`[gateway]`): `public_host`, else the host of
    `pki.public_url` (which devices already reach for CRLs and OCSP) -- never the listen
    address, which is often a wildcard; `public_port`, else `port`; the topic prefix."""
    gateway = settings.gateway
    host = gateway.public_host or urlsplit(settings.pki_public_url).hostname or settings.server.host
    return DataPlane(
        mqtt_host=host,
        mqtt_port=gateway.public_port or gateway.port,
        topic_root=gateway.topic_prefix,
    )


def tpm_ek_policy_of(settings: Settings) -> EkPolicy | None:
    """The TPM makers' EK CAs (`[provisioning] tpm_ek_roots`), read once when provisioning
    is built; a missing or empty trust store stops the start, it never trusts nothing."""
    cfg = settings.provisioning
    return ek_policy(
        cfg.tpm_ek_roots,
        cfg.tpm_ek_intermediates,
        require_certificate=cfg.tpm_require_ek_certificate,
    )


def load_vault(settings: Settings, env: dict[str, str] | None = None) -> Vault:
    environ = dict(os.environ) if env is None else env
    if environ.get(KEK_ENV):
        return Vault.from_encoded(environ[KEK_ENV])
    if settings.kek_file is not None:
        return Vault.from_encoded(_read_kek_file(settings.kek_file))
    raise ConfigurationError(
        "config.kek_missing",
        f"no key-encryption key: set {KEK_ENV} (devicetrust init printed one) or kek_file",
    )


def _read_kek_file(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii").strip()
    except OSError as exc:
        raise ConfigurationError("config.kek_file", f"cannot read kek_file {path}: {exc}") from exc
