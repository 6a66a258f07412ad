"""How a route reaches the services: the `Platform` the app was built with.

Handlers get services from here and nowhere else; they never open a database session.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from devicetrust.domain.errors import ConfigurationError
from devicetrust.runtime.container import Platform


def platform_of(request: Request) -> Platform:
    platform = getattr(request.app.state, "platform", None)
    if not isinstance(platform, Platform):
        raise ConfigurationError("config.no_platform", "the API app was built without a platform")
    return platform


PlatformDep = Annotated[Platform, Depends(platform_of)]
