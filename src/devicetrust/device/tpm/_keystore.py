"""The device's TPM 2.0 keystore: EK, AK, credential activation, the operational key, its
certification by the AK and its CSR, signatures (TPM2_Sign), and small secrets sealed under
the storage root key, optionally to PCR values (`seal` / `unseal`). With `quote`, the AK signs the
PCR values for measured boot. The URI-driven
`tpm2:` keystore (`device.keystore`) builds on it.

Talks to the TPM through a TCTI (`device:/dev/tpmrm0`, `swtpm:host=...,port=...`) with
tpm2-pytss (ESAPI), imported when a keystore opens. Works without a resource manager: every
object and session it loads is flushed before the method returns, on success or failure (a
TPM has as few as 3 transient object slots). Never exports a private key: the operational
key's private part leaves the TPM only wrapped by this TPM's storage root key (`TpmKey`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from devicetrust.device.tpm import _templates
from devicetrust.device.tpm._errors import (
    ActivationFailed,
    TpmOperationFailed,
    TpmUnavailable,
    UnsealFailed,
)
from devicetrust.device.tpm._templates import EndorsementKeyType

_NV_INDEX_FIRST = 0x01000000
_NV_INDEX_COUNT = 0x00FFFFFF


@dataclass(frozen=True, slots=True)
class EndorsementKeyInfo:
    """What the factory registers: the EK's TPM2B_PUBLIC and, if the TPM has one, its
    certificate (DER, from the EK type's NV index)."""

    ek_type: EndorsementKeyType
    public: bytes
    certificate: bytes | None


@dataclass(frozen=True, slots=True)
class TpmKey:
    """An operational key as the device stores it: its TPM2B_PUBLIC and its TPM2B_PRIVATE,
    which only the TPM that created it can load (wrapped by its storage root key)."""

    public: bytes
    private: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class SealedObject:
    """A small secret sealed by this TPM (TPM2_Create of a sealed data object under the
    storage root key): its TPM2B_PUBLIC and TPM2B_PRIVATE, and the SHA-256 PCRs whose
    values at sealing time its policy demands (empty: no policy)."""

    public: bytes
    private: bytes = field(repr=False)
    pcrs: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Quote:
    """TPM2_Quote by the AK: the TPMS_ATTEST, the TPMT_SIGNATURE (marshalled) and the SHA-256
    PCR values it covers, read right after (the server checks them against its digest)."""

    attest: bytes
    signature: bytes
    pcrs: dict[int, bytes]


@dataclass(frozen=True, slots=True)
class Certification:
    """TPM2_Certify of a key by the AK: the TPMS_ATTEST and the TPMT_SIGNATURE, marshalled."""

    attest: bytes
    signature: bytes


class TpmKeystore:
    """One open connection to a TPM. Use as a context manager, or call `close()`."""

    def __init__(
        self, tcti: str, *, ek_type: EndorsementKeyType = EndorsementKeyType.RSA_2048
    ) -> None:
        try:
            import tpm2_pytss
            import tpm2_pytss.cryptography
            import tpm2_pytss.utils
        except ImportError as exc:
            raise TpmUnavailable(
                "the TPM keystore needs tpm2-pytss (pip install 'devicetrust[tpm]')"
            ) from exc
        self._tss: Any = tpm2_pytss
        self.ek_type = ek_type
        try:
            self._esapi: Any = tpm2_pytss.ESAPI(tpm2_pytss.TCTILdr.parse(tcti))
        except tpm2_pytss.TSS2_Exception as exc:
            raise TpmUnavailable("cannot open the TPM", tcti=tcti, rc=int(exc.rc)) from exc

    def close(self) -> None:
        self._esapi.close()

    def __enter__(self) -> TpmKeystore:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def endorsement_key(self) -> EndorsementKeyInfo:
        """The EK public area (recreated from its template) and the EK certificate if any."""
        with self._failing_as("read the endorsement key"), contextlib.ExitStack() as flush:
            certificate, template = self._ek_template()
            _, public = self._create_primary(flush, template, "ENDORSEMENT")
        return EndorsementKeyInfo(self.ek_type, bytes(public.marshal()), certificate)

    def attestation_key_public(self) -> bytes:
        """The AK's TPM2B_PUBLIC (the same on every call: a primary key)."""
        with self._failing_as("create the attestation key"), contextlib.ExitStack() as flush:
            _, public = self._attestation_key(flush)
        return bytes(public.marshal())

    def activate_credential(self, credential_blob: bytes, encrypted_secret: bytes) -> bytes:
        """TPM2_ActivateCredential: the secret the server sealed to this TPM's EK for this AK,
        or `device.tpm_activation_failed`."""
        types = self._tss.types
        with self._failing_as("activate the credential"), contextlib.ExitStack() as flush:
            blob, _ = types.TPM2B_ID_OBJECT.unmarshal(credential_blob)
            secret, _ = types.TPM2B_ENCRYPTED_SECRET.unmarshal(encrypted_secret)
            _, template = self._ek_template()
            ek, _ = self._create_primary(flush, template, "ENDORSEMENT")
            ak, _ = self._attestation_key(flush)
            ek_session = self._ek_session(flush, template)
            try:
                recovered = self._esapi.activate_credential(
                    ak,
                    ek,
                    blob,
                    secret,
                    session1=self._tss.constants.ESYS_TR.PASSWORD,
                    session2=ek_session,
                )
            except self._tss.TSS2_Exception as exc:
                raise ActivationFailed(
                    "the TPM refused the credential (not for this EK or this AK)",
                    rc=int(exc.rc),
                ) from exc
        return bytes(recovered)

    def create_key(self) -> TpmKey:
        """A new ECDSA P-256 signing key under the storage root key (the operational key)."""
        with self._failing_as("create the operational key"), contextlib.ExitStack() as flush:
            srk, _ = self._create_primary(flush, _templates.storage_root_key(self._tss), "OWNER")
            private, public, *_ = self._esapi.create(
                srk, self._tss.types.TPM2B_SENSITIVE_CREATE(), _templates.hardware_key(self._tss)
            )
        return TpmKey(public=bytes(public.marshal()), private=bytes(private.marshal()))

    def certify(self, key: TpmKey, qualifying_data: bytes) -> Certification:
        """TPM2_Certify of `key` by the AK with the server's nonce as qualifying data."""
        esys_tr = self._tss.constants.ESYS_TR
        scheme = self._tss.types.TPMT_SIG_SCHEME(scheme=self._tss.constants.TPM2_ALG.NULL)
        with self._failing_as("certify the key"), contextlib.ExitStack() as flush:
            loaded = self._load(flush, key)
            ak, _ = self._attestation_key(flush)
            attest, signature = self._esapi.certify(
                loaded,
                ak,
                qualifying_data,
                scheme,  # NULL: the AK's own scheme (ECDSA SHA-256)
                session1=esys_tr.PASSWORD,
                session2=esys_tr.PASSWORD,
            )
        return Certification(attest=bytes(attest), signature=bytes(signature.marshal()))

    def quote(self, qualifying_data: bytes, pcrs: tuple[int, ...]) -> Quote:
        """TPM2_Quote of the SHA-256 `pcrs` by the AK with the server's nonce (measured boot)."""
        scheme = self._tss.types.TPMT_SIG_SCHEME(scheme=self._tss.constants.TPM2_ALG.NULL)
        selection = self._pcr_selection(pcrs)
        with self._failing_as("quote the PCRs"), contextlib.ExitStack() as flush:
            ak, _ = self._attestation_key(flush)
            attest, signature = self._esapi.quote(ak, selection, qualifying_data, scheme)
            attest, signature = bytes(attest), bytes(signature.marshal())
        return Quote(attest, signature, self.pcr_values(pcrs))

    def pcr_values(self, pcrs: tuple[int, ...]) -> dict[int, bytes]:
        """The SHA-256 bank's values of `pcrs` (TPM2_PCR_Read returns at most 8 per call)."""
        wanted = sorted(set(pcrs))
        values: dict[int, bytes] = {}
        with self._failing_as("read the PCRs"):
            for start in range(0, len(wanted), 8):
                chunk = tuple(wanted[start : start + 8])
                _, _, digests = self._esapi.pcr_read(self._pcr_selection(chunk))
                read = [bytes(digest) for digest in digests]  # copied at once
                if len(read) != len(chunk):
                    raise TpmOperationFailed("the TPM did not return every PCR asked for")
                values.update(zip(chunk, read, strict=True))
        return values

    def create_csr(self, key: TpmKey, subject: x509.Name) -> x509.CertificateSigningRequest:
        """A PKCS#10 request for `key`, signed in the TPM (TPM2_Sign over the request's
        SHA-256). `cryptography` builds it around tpm2-pytss's key object, which forwards
        the signature to the TPM."""
        with self._failing_as("sign the CSR"), contextlib.ExitStack() as flush:
            loaded = self._load(flush, key)
            signer = self._tss.cryptography.tpm_ecc_private_key(self._esapi, loaded)
            builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
            return builder.sign(signer, hashes.SHA256())

    def public_key(self, key: TpmKey) -> ec.EllipticCurvePublicKey:
        """The public key of `key`, from its public area (no TPM command)."""
        public, _ = self._tss.types.TPM2B_PUBLIC.unmarshal(key.public)
        loaded = serialization.load_pem_public_key(bytes(public.publicArea.to_pem()))
        if not isinstance(loaded, ec.EllipticCurvePublicKey):
            raise TpmOperationFailed("the key blob is not an ECC key")
        return loaded

    def sign_digest(self, key: TpmKey, digest: bytes) -> bytes:
        """TPM2_Sign of a SHA-256 digest with `key`: an ECDSA signature, DER-encoded."""
        constants, types = self._tss.constants, self._tss.types
        scheme = types.TPMT_SIG_SCHEME(scheme=constants.TPM2_ALG.ECDSA)
        scheme.details.ecdsa.hashAlg = constants.TPM2_ALG.SHA256
        ticket = types.TPMT_TK_HASHCHECK(
            tag=constants.TPM2_ST.HASHCHECK, hierarchy=constants.TPM2_RH.NULL
        )
        with self._failing_as("sign"), contextlib.ExitStack() as flush:
            loaded = self._load(flush, key)
            signature = self._esapi.sign(loaded, types.TPM2B_DIGEST(digest), scheme, ticket)
        return bytes(signature)

    def seal(self, data: bytes | bytearray, *, pcrs: tuple[int, ...] = ()) -> SealedObject:
        """Seal up to 128 bytes under the storage root key; with `pcrs`, only while those
        SHA-256 PCRs hold the values they hold now (TPM2_PolicyPCR)."""
        types = self._tss.types
        sensitive = types.TPM2B_SENSITIVE_CREATE(
            sensitive=types.TPMS_SENSITIVE_CREATE(data=types.TPM2B_SENSITIVE_DATA(bytes(data)))
        )
        with self._failing_as("seal the secret"), contextlib.ExitStack() as flush:
            policy = self._pcr_policy_digest(flush, pcrs) if pcrs else b""
            srk, _ = self._create_primary(flush, _templates.storage_root_key(self._tss), "OWNER")
            private, public, *_ = self._esapi.create(
                srk, sensitive, _templates.sealed_data(self._tss, policy)
            )
        return SealedObject(bytes(public.marshal()), bytes(private.marshal()), tuple(pcrs))

    def unseal(self, sealed: SealedObject) -> bytearray:
        """The sealed secret, through a session salted by the SRK with response encryption;
        `device.tpm_unseal_failed` if this TPM did not seal it or its PCRs changed."""
        constants, types = self._tss.constants, self._tss.types
        with self._failing_as("unseal the secret"), contextlib.ExitStack() as flush:
            srk, _ = self._create_primary(flush, _templates.storage_root_key(self._tss), "OWNER")
            try:
                handle = self._esapi.load(
                    srk,
                    types.TPM2B_PRIVATE.unmarshal(sealed.private)[0],
                    types.TPM2B_PUBLIC.unmarshal(sealed.public)[0],
                )
            except self._tss.TSS2_Exception as exc:
                raise UnsealFailed("this TPM did not seal the object", rc=int(exc.rc)) from exc
            flush.callback(self._esapi.flush_context, handle)
            kind = constants.TPM2_SE.POLICY if sealed.pcrs else constants.TPM2_SE.HMAC
            session = self._esapi.start_auth_session(
                srk, constants.ESYS_TR.NONE, kind, _templates.session_cipher(self._tss),
                constants.TPM2_ALG.SHA256,
            )  # fmt: skip
            flush.callback(self._esapi.flush_context, session)
            self._esapi.trsess_set_attributes(
                session, constants.TPMA_SESSION.CONTINUESESSION | constants.TPMA_SESSION.ENCRYPT
            )
            try:
                if sealed.pcrs:
                    self._esapi.policy_pcr(session, b"", self._pcr_selection(sealed.pcrs))
                data = self._esapi.unseal(handle, session1=session)
            except self._tss.TSS2_Exception as exc:
                raise UnsealFailed(
                    "the TPM refused to unseal (the PCR values have changed)", rc=int(exc.rc)
                ) from exc
        return bytearray(bytes(data))

    # -- internals: every handle goes on `flush` the moment it exists --

    def _pcr_selection(self, pcrs: tuple[int, ...]) -> Any:
        if not pcrs or any(not 0 <= pcr <= 23 for pcr in pcrs):
            raise TpmOperationFailed("PCR indices are 0 to 23")
        return self._tss.types.TPML_PCR_SELECTION.parse(
            "sha256:" + ",".join(str(pcr) for pcr in sorted(set(pcrs)))
        )

    def _pcr_policy_digest(self, flush: contextlib.ExitStack, pcrs: tuple[int, ...]) -> bytes:
        """The policy digest of PolicyPCR over the PCRs' current values (a trial session)."""
        constants, types = self._tss.constants, self._tss.types
        selection = self._pcr_selection(pcrs)
        trial = self._esapi.start_auth_session(
            constants.ESYS_TR.NONE, constants.ESYS_TR.NONE, constants.TPM2_SE.TRIAL,
            types.TPMT_SYM_DEF(algorithm=constants.TPM2_ALG.NULL), constants.TPM2_ALG.SHA256,
        )  # fmt: skip
        flush.callback(self._esapi.flush_context, trial)
        self._esapi.policy_pcr(trial, b"", selection)
        return bytes(self._esapi.policy_get_digest(trial))

    @contextlib.contextmanager
    def _failing_as(self, what: str) -> Iterator[None]:
        try:
            yield
        except self._tss.TSS2_Exception as exc:
            raise TpmOperationFailed(f"the TPM could not {what}", rc=int(exc.rc)) from exc

    def _create_primary(
        self, flush: contextlib.ExitStack, template: Any, hierarchy: str
    ) -> tuple[Any, Any]:
        handle, public, *_ = self._esapi.create_primary(
            self._tss.types.TPM2B_SENSITIVE_CREATE(),
            template,
            getattr(self._tss.constants.ESYS_TR, hierarchy),
        )
        flush.callback(self._esapi.flush_context, handle)
        return handle, public

    def _attestation_key(self, flush: contextlib.ExitStack) -> tuple[Any, Any]:
        return self._create_primary(flush, _templates.attestation_key(self._tss), "ENDORSEMENT")

    def _load(self, flush: contextlib.ExitStack, key: TpmKey) -> Any:
        types = self._tss.types
        private, _ = types.TPM2B_PRIVATE.unmarshal(key.private)
        public, _ = types.TPM2B_PUBLIC.unmarshal(key.public)
        with contextlib.ExitStack() as parent:  # the SRK is flushed once the key is loaded
            srk, _ = self._create_primary(parent, _templates.storage_root_key(self._tss), "OWNER")
            loaded = self._esapi.load(srk, private, public)
        flush.callback(self._esapi.flush_context, loaded)
        return loaded

    def _ek_session(self, flush: contextlib.ExitStack, template: Any) -> Any:
        """The authorisation for the EK's USER role. Low-range EKs (userWithAuth clear) need
        their policy, PolicySecret(TPM_RH_ENDORSEMENT) (TCG EK Credential Profile 2.0
        §B.3.3); high-range EKs set userWithAuth with an empty authValue (§B.4), so a
        password session serves."""
        constants = self._tss.constants
        if template.publicArea.objectAttributes & constants.TPMA_OBJECT.USERWITHAUTH:
            return constants.ESYS_TR.PASSWORD
        session = self._esapi.start_auth_session(
            constants.ESYS_TR.NONE,
            constants.ESYS_TR.NONE,
            constants.TPM2_SE.POLICY,
            self._tss.types.TPMT_SYM_DEF(algorithm=constants.TPM2_ALG.NULL),
            template.publicArea.nameAlg,
        )
        flush.callback(self._esapi.flush_context, session)
        self._esapi.policy_secret(constants.ESYS_TR.ENDORSEMENT, session, b"", b"", b"", 0)
        return session

    def _ek_template(self) -> tuple[bytes | None, Any]:
        """(certificate, template) per the TCG EK profile: the NV template and nonce, when
        the TPM defines them, replace the defaults so the EK matches its certificate."""
        utils = self._tss.utils
        defined = self._defined_nv_indices()
        reader = utils.NVReadEK(self._esapi)

        def read(index: int) -> bytes:
            if int(index) not in defined:  # asking the TPM would log an ESYS error
                raise utils.NoSuchIndex(index)
            return bytes(reader(index))

        if self.ek_type.certificate_index not in defined and self.ek_type.template_name.startswith(
            "EK-HIGH"
        ):
            raise TpmOperationFailed(
                "this TPM has no certificate for a high-range EK of this type",
                ek_type=self.ek_type.name,
            )
        certificate, template = utils.create_ek_template(self.ek_type.template_name, read)
        return (None if certificate is None else bytes(certificate)), template

    def _defined_nv_indices(self) -> frozenset[int]:
        constants = self._tss.constants
        more, data = self._esapi.get_capability(
            constants.TPM2_CAP.HANDLES, _NV_INDEX_FIRST, _NV_INDEX_COUNT
        )
        handles = {int(handle) for handle in data.data.handles}
        while more:
            more, data = self._esapi.get_capability(
                constants.TPM2_CAP.HANDLES, max(handles) + 1, _NV_INDEX_COUNT
            )
            handles |= {int(handle) for handle in data.data.handles}
        return frozenset(handles)
