"""The REST API (FastAPI): routers per concern, scoped operator API keys, problem+json errors."""

from devicetrust.api.app import create_app

__all__ = ["create_app"]
