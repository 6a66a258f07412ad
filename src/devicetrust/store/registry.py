"""Registry lookups every service needs on the same rows (identity, pki, provisioning).

Never resolves a unit by anything weaker than its exact, canonical physical id.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from devicetrust.domain.errors import NotFound
from devicetrust.domain.ids import parse_physical_id
from devicetrust.store.models import PhysicalIdentityRow


def unit_not_found(physical_id: str) -> NotFound:
    return NotFound(
        "identity.physical_not_found", f"no physical identity {physical_id}", id=physical_id
    )


def physical_row(session: Session, physical_id: str, *, lock: bool = False) -> PhysicalIdentityRow:
    """The unit's row (locked FOR UPDATE when `lock`), or `identity.physical_not_found`."""
    pid = parse_physical_id(physical_id)
    stmt = select(PhysicalIdentityRow).where(PhysicalIdentityRow.id == pid)
    row = session.execute(stmt.with_for_update() if lock else stmt).scalar_one_or_none()
    if row is None:
        raise unit_not_found(pid)
    return row
