"""Operator credentials: scoped API keys for the REST API and the CLI."""

from devicetrust.auth.api_keys import ApiKey, ApiKeyService, Scope, has_scope, parse_scopes

__all__ = ["ApiKey", "ApiKeyService", "Scope", "has_scope", "parse_scopes"]
