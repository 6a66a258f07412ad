"""One router per concern; each route states its permission (see `devicetrust.api.security`)."""
