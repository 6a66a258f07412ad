"""Envelope encryption of secrets at rest (webhook signing secrets, key-file passphrases).

Owns the key-encryption key (KEK) in memory and the sealed-record format. Never writes a
secret anywhere, never logs one, and never returns a secret except to the caller of `open`.
"""

from devicetrust.vault._format import OVERHEAD
from devicetrust.vault._kek import KEK_SIZE, generate_kek_text
from devicetrust.vault._lazy import LazyVault, Sealer
from devicetrust.vault._vault import Vault

KEK_ENV_VAR = "DEVICETRUST_KEK"

__all__ = [
    "KEK_ENV_VAR",
    "KEK_SIZE",
    "OVERHEAD",
    "LazyVault",
    "Sealer",
    "Vault",
    "generate_kek_text",
]
