"""devicetrust.ingest (being built)."""
