"""`pkcs11:` key URIs (RFC 7512), reduced to what naming a CA key in a token needs.

    pkcs11:token=devicetrust;object=root-ca
    pkcs11:token=devicetrust;object=root-ca;id=%8f%01;type=private;serial=399b49972da89ba6

Path attributes accepted: `token` (CKA_LABEL of the token, required), `object` (CKA_LABEL of
the key, required), `id` (CKA_ID bytes), `type` (only `private`), `serial` (token serial).
Never accepts a PIN or module in the URI (`pin-value`, `pin-source`, `module-path`,
`module-name`, or any query): those come from `Pkcs11Config`, so a URI is safe to store, show
and log. Never echoes a refused URI in an error (it might carry a PIN).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote_to_bytes

from devicetrust.pki.keys._errors import InvalidKeyUri

SCHEME = "pkcs11"
_PREFIX = SCHEME + ":"
# RFC 7512 §2.3 pk11-pchar: unreserved / pk11-res-avail / pct-encoded (no ";", "?", "/").
_VALUE_RE = re.compile(r"(?:[A-Za-z0-9\-._~:\[\]@!$'()*+,=&]|%[0-9A-Fa-f]{2})*")
_NAME_RE = re.compile(r"[a-z][a-z0-9-]*")
_KNOWN = frozenset({"token", "object", "id", "type", "serial"})
_SECRET_OR_MODULE = frozenset({"pin-value", "pin-source", "module-path", "module-name"})
MAX_LABEL_BYTES = 32  # CK_TOKEN_INFO.label is 32 bytes; keep object labels to the same bound


@dataclass(frozen=True, slots=True)
class Pkcs11Uri:
    token: str
    object: str
    id: bytes | None = None
    serial: str | None = None

    def __str__(self) -> str:
        parts = [f"token={_quote(self.token)}", f"object={_quote(self.object)}"]
        if self.id is not None:
            parts.append("id=" + "".join(f"%{byte:02x}" for byte in self.id))
        if self.serial is not None:
            parts.append(f"serial={_quote(self.serial)}")
        parts.append("type=private")
        return _PREFIX + ";".join(parts)

    @classmethod
    def parse(cls, uri: str) -> Pkcs11Uri:
        if not uri.startswith(_PREFIX):
            raise InvalidKeyUri("not a pkcs11: key URI")
        body = uri[len(_PREFIX) :]
        if "?" in body or "#" in body:
            raise InvalidKeyUri(
                "pkcs11: key URIs take no query: the module and PIN come from Pkcs11Config, "
                "never from the URI"
            )
        values: dict[str, bytes] = {}
        for attribute in body.split(";") if body else []:
            name, equals, raw = attribute.partition("=")
            if not equals or not _NAME_RE.fullmatch(name):
                raise InvalidKeyUri("a pkcs11: path attribute is name=value")
            if name in _SECRET_OR_MODULE:
                raise InvalidKeyUri(
                    f"'{name}' is never taken from a key URI; give it in Pkcs11Config",
                    attribute=name,
                )
            if name not in _KNOWN:
                raise InvalidKeyUri(
                    f"unsupported pkcs11: attribute '{name}'", attribute=name, known=sorted(_KNOWN)
                )
            if name in values:
                raise InvalidKeyUri(f"pkcs11: attribute '{name}' given twice", attribute=name)
            if not _VALUE_RE.fullmatch(raw):
                raise InvalidKeyUri(f"badly encoded value of '{name}'", attribute=name)
            values[name] = unquote_to_bytes(raw)
        if values.get("type", b"private") != b"private":
            raise InvalidKeyUri("a CA key URI names the private key (type=private)")
        token = _label(values, "token")
        label = _label(values, "object")
        key_id = values.get("id")
        if key_id is not None and not key_id:
            raise InvalidKeyUri("an empty id matches nothing")
        serial = _text(values["serial"], "serial") if "serial" in values else None
        return cls(token=token, object=label, id=key_id, serial=serial)


def _label(values: dict[str, bytes], name: str) -> str:
    if name not in values:
        raise InvalidKeyUri(f"a CA key URI names its '{name}'", attribute=name)
    raw = values[name]
    if not 0 < len(raw) <= MAX_LABEL_BYTES:
        raise InvalidKeyUri(f"'{name}' is 1-{MAX_LABEL_BYTES} bytes", attribute=name)
    return _text(raw, name)


def _text(raw: bytes, name: str) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidKeyUri(f"'{name}' is not UTF-8", attribute=name) from exc
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
        raise InvalidKeyUri(f"'{name}' holds control characters", attribute=name)
    return text


def _quote(value: str) -> str:
    return quote(value, safe="-._~")
