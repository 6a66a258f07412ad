"""devicetrust.policy (being built)."""
