"""devicetrust.deviceauth (being built)."""
