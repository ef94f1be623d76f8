"""Request helpers shared by the route modules: JSON bodies, query values, result documents."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from arctern.json_input import InvalidJson, parse_json
from arctern.transfer.documents import result_document
from arctern.transfer.errors import new_request_id
from arctern.transfer.filters import bad_request, parse_bool, parse_int


def resource(request: Request) -> str:
    """The request path as Globus reports it: without the service prefix and ``/v0.10``."""
    path = request.url.path
    index = path.find("/v0.10/")
    return path[index + len("/v0.10") :] if index >= 0 else path


async def json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        raise bad_request("A JSON request body is required")
    try:
        body = parse_json(raw)
    except InvalidJson as exc:
        raise bad_request(str(exc)) from None
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object")
    return body


def query_int(request: Request, name: str, *, default: int, minimum: int, maximum: int) -> int:
    return parse_int(
        request.query_params.get(name),
        default=default,
        name=name,
        minimum=minimum,
        maximum=maximum,
    )


def query_bool(request: Request, name: str, *, default: bool) -> bool:
    return parse_bool(request.query_params.get(name), default=default, name=name)


def result(
    request: Request,
    code: str,
    message: str,
    *,
    data_type: str = "result",
    status: int = 200,
    **extra: Any,
) -> JSONResponse:
    doc = result_document(data_type, code, message, resource(request), new_request_id(), **extra)
    return JSONResponse(doc, status_code=status)
