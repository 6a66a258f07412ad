"""The OpenAPI document of the API, with error responses described as what they are.

FastAPI files a response `model` under the route's own media type (`application/json`);
errors are `application/problem+json`, so their schema is moved there.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from devicetrust.api.problems import PROBLEM_CONTENT_TYPE


def openapi_document(app: FastAPI) -> dict[str, Any]:
    document = app.openapi()  # generated once, then cached by FastAPI
    for item in document.get("paths", {}).values():
        for operation in item.values():
            for response in operation.get("responses", {}).values():
                _problem_media_type(response)
    return document


def _problem_media_type(response: dict[str, Any]) -> None:
    content = response.get("content", {})
    if PROBLEM_CONTENT_TYPE in content and "application/json" in content:
        content[PROBLEM_CONTENT_TYPE] = content.pop("application/json")
