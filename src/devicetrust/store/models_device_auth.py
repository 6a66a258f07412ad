"""Tables of device auth (see migrations/versions). Imported by `store.models` so that
`Base.metadata` is complete."""

from __future__ import annotations

from devicetrust.store.models import Base

__all__ = ["Base"]
