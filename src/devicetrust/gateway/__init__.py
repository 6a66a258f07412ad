"""devicetrust.gateway (being built)."""
