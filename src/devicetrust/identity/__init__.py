"""Identity registry service: create, bind, rename, transfer, replace, decommission, history."""

from devicetrust.identity.service import IdentityService, UnitSpec

__all__ = ["IdentityService", "UnitSpec"]
