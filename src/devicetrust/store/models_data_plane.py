"""Tables of the data plane (see migrations/versions/0006). Imported by `store.models` so
that `Base.metadata` is complete."""

from __future__ import annotations

from devicetrust.store.models import Base

__all__ = ["Base"]
