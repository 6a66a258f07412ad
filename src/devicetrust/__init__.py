"""devicetrust: secure identities for a fleet of IoT devices, for their whole life."""

__all__ = ["__version__"]

__version__ = "0.1.0"
