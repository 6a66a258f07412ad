"""Composition root: configuration, logging and the wiring of services (`Platform`)."""

from devicetrust.runtime.container import Platform, load_vault
from devicetrust.runtime.logs import configure_logging
from devicetrust.runtime.settings import Settings, load_settings

__all__ = ["Platform", "Settings", "configure_logging", "load_settings", "load_vault"]
