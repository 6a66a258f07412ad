"""The device SDK: what runs on a device or gateway to obtain and use its identity.

Talks to the server only over network protocols and imports no server module (nothing from
`provisioning`, `pki`, `store`, `api`, ...), so a device needs none of the server's
dependencies. Hardware-backed keys live in sub-packages (`device.tpm`).
"""

__all__: list[str] = []
