"""The OpenAPI document, made true: FastAPI's generated schema, then per operation

- the security it needs (`Authorization: Bearer sk_...`, `X-Namespace`) as securitySchemes,
  in place of the header parameters the dependencies declare;
- the error statuses it can answer, each in the one error shape (api/errors.py), derived
  from what the route depends on (a key, a namespace, a body, path ids, list paging) plus
  what its decorator adds (`responses=errors(409)`);
- links between operations (create retriever -> execute -> get execution -> list), which
  schemathesis follows in its stateful phase (tests/fuzz).

Response bodies are documented by each route's `response_model` (api/schemas/responses.py,
execution_responses.py): documentation only, since the routes return JsonResponse objects,
which FastAPI passes through unvalidated. Bodies a route takes as a plain object are
documented by `body_doc` (api/schemas/bodies.py). tests/api/test_openapi.py holds the
document to this; tests/fuzz holds every response to the document.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from pydantic import BaseModel

from stagewise.api import deps
from stagewise.api.routes.paging import page_query
from stagewise.api.schemas.execution_responses import StreamEvent
from stagewise.api.schemas.responses import ErrorResponse

BEARER, NAMESPACE = "bearerAuth", "namespaceHeader"
ERROR_REF = "#/components/schemas/ErrorResponse"

WHY: dict[int, str] = {
    400: "Malformed JSON, a refused cursor, or no namespace selected",
    401: "Missing, malformed, unknown, revoked or expired API key",
    403: "The key may not do this: read-only, bound to another namespace, or not admin",
    404: "A resource named by the request does not exist",
    409: "A name or idempotency key already in use",
    413: "The request body is over MAX_REQUEST_BYTES",
    422: "The request failed validation",
    429: "Over the key's request rate or concurrent executions (see Retry-After)",
    503: "A dependency did not answer",
}


# An execute with `stream: true` answers Server-Sent Events instead of the JSON body; the
# schema describes each event, its `data` a StreamEvent as JSON.
SSE_EVENT = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {"$ref": "#/components/schemas/StreamEvent"},
        },
        "event": {"type": "string"},
        "id": {"type": "string"},
        "retry": {"type": "integer"},
    },
}
STREAMED: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {"schema": SSE_EVENT}}}
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route decorator: statuses this route adds to the derived ones."""
    return {code: {"model": ErrorResponse, "description": WHY[code]} for code in codes}


def body_doc(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra=` for a route that takes its body as a plain object: the model's
    schema, merged over FastAPI's `{"type": "object"}` (its `$defs` are moved to the
    components by build_openapi)."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    return {"requestBody": {"content": {"application/json": {"schema": schema}}}}


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for dep in dependant.dependencies:
        if dep.call is not None:
            yield dep.call
        yield from _calls(dep)


def _headers(dependant: Dependant) -> set[str]:
    found = {p.alias.lower() for p in dependant.header_params}
    for dep in dependant.dependencies:
        found |= _headers(dep)
    return found


def _can_fail(field: Any) -> bool:
    """Whether a query parameter can fail validation: any string passes a plain `str`."""
    return field.field_info.annotation not in (str, str | None) or bool(field.field_info.metadata)


def _query(dependant: Dependant) -> bool:
    return any(_can_fail(p) for p in dependant.query_params) or any(
        _query(d) for d in dependant.dependencies
    )


def _derived(route: RouteContext, method: str, has_body: bool) -> set[int]:
    """The error statuses a route can answer, from what it depends on."""
    calls = set(_calls(route.dependant))
    headers = _headers(route.dependant)
    codes = {429}  # the rate limit counts every request that carries a key, any route
    if "authorization" in headers:
        codes.add(401)
        writes = not deps.is_read(method, route.path_format)
        if writes or calls & {deps.get_writer, deps.get_admin, deps.get_namespace_dep}:
            codes.add(403)
    if deps.get_namespace_dep in calls:
        codes |= {400, 404}  # no namespace selected; the selected one does not exist
    if route.dependant.path_params:
        codes.add(404)
    if has_body:
        codes |= {400, 413, 422}  # malformed JSON; too large; invalid values
    if _query(route.dependant):
        codes.add(422)
    if page_query in calls:
        codes.add(400)  # a cursor sent to a list that pages by offset
    return codes


def _error_response(code: int) -> dict[str, Any]:
    return {
        "description": WHY.get(code, "Error"),
        "content": {"application/json": {"schema": {"$ref": ERROR_REF}}},
    }


def _secure(operation: dict[str, Any]) -> None:
    """The Authorization and X-Namespace header parameters become security requirements."""
    params = operation.get("parameters", [])
    names = {p["name"].lower() for p in params if p.get("in") == "header"}
    kept = [p for p in params if p.get("name", "").lower() not in ("authorization", "x-namespace")]
    if kept:
        operation["parameters"] = kept
    else:
        operation.pop("parameters", None)
    if "x-namespace" in names:
        # X-Namespace names the namespace; a key bound to one may leave it out.
        operation["security"] = [{BEARER: [], NAMESPACE: []}, {BEARER: []}]
    elif "authorization" in names:
        operation["security"] = [{BEARER: []}]
    else:
        operation["security"] = []


SECURITY_SCHEMES = {
    BEARER: {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key: `Authorization: Bearer sk_...`",
    },
    NAMESPACE: {
        "type": "apiKey",
        "in": "header",
        "name": "X-Namespace",
        "description": "The namespace (its name or id) the request works in",
    },
}


def _operation_ids(paths: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {
        (method.upper(), path): op["operationId"]
        for path, ops in paths.items()
        for method, op in ops.items()
        if isinstance(op, dict) and "operationId" in op
    }


RETRIEVER = "/v1/retrievers/{retriever_id}"
EXECUTION = RETRIEVER + "/executions/{execution_id}"
COLLECTION = "/v1/collections/{collection_identifier}"
DOCUMENT = COLLECTION + "/documents/{document_id}"
SAME_RETRIEVER = {"retriever_id": "$request.path.retriever_id"}
SAME_COLLECTION = {"collection_identifier": "$request.path.collection_identifier"}
SAME_DOCUMENT = {**SAME_COLLECTION, "document_id": "$request.path.document_id"}

# (source method, path) -> link name -> (target method, path, parameters)
LINKS: dict[tuple[str, str], dict[str, tuple[str, str, dict[str, str]]]] = {
    ("POST", "/v1/retrievers"): {
        "ExecuteRetriever": (
            "POST",
            RETRIEVER + "/execute",
            {"retriever_id": "$response.body#/retriever_id"},
        ),
        "GetRetriever": ("GET", RETRIEVER, {"retriever_id": "$response.body#/retriever_id"}),
        "PatchRetriever": ("PATCH", RETRIEVER, {"retriever_id": "$response.body#/retriever_id"}),
    },
    # A write is followed by a read of what it wrote (a write must never store what a read
    # cannot load back).
    ("PATCH", RETRIEVER): {"GetPatchedRetriever": ("GET", RETRIEVER, SAME_RETRIEVER)},
    ("POST", RETRIEVER + "/clone"): {
        "GetClone": ("GET", RETRIEVER, {"retriever_id": "$response.body#/retriever/retriever_id"}),
    },
    ("PATCH", COLLECTION): {"GetPatchedCollection": ("GET", COLLECTION, SAME_COLLECTION)},
    ("PATCH", DOCUMENT): {"GetPatchedDocument": ("GET", DOCUMENT, SAME_DOCUMENT)},
    ("PUT", DOCUMENT): {"GetPutDocument": ("GET", DOCUMENT, SAME_DOCUMENT)},
    ("POST", RETRIEVER + "/execute"): {
        "GetExecution": (
            "GET",
            EXECUTION,
            {
                "retriever_id": "$request.path.retriever_id",
                "execution_id": "$response.body#/execution_id",
            },
        ),
        "GetExecutionStatus": (
            "GET",
            EXECUTION + "/status",
            {
                "retriever_id": "$request.path.retriever_id",
                "execution_id": "$response.body#/execution_id",
            },
        ),
    },
    ("GET", EXECUTION): {
        "ListExecutions": (
            "POST",
            RETRIEVER + "/executions/list",
            {"retriever_id": "$request.path.retriever_id"},
        ),
        "GetExecutionProfile": (
            "GET",
            EXECUTION + "/profile",
            {
                "retriever_id": "$request.path.retriever_id",
                "execution_id": "$request.path.execution_id",
            },
        ),
    },
    ("POST", "/v1/retrievers/execute"): {
        "GetAdhocExecution": (
            "GET",
            "/v1/retrievers/executions/{execution_id}",
            {"execution_id": "$response.body#/execution_id"},
        ),
    },
    ("POST", "/v1/collections"): {
        "GetCollection": (
            "GET",
            COLLECTION,
            {"collection_identifier": "$response.body#/collection_id"},
        ),
        "PatchCollection": (
            "PATCH",
            COLLECTION,
            {"collection_identifier": "$response.body#/collection_id"},
        ),
        "ListDocuments": (
            "POST",
            "/v1/collections/{collection_identifier}/documents/list",
            {"collection_identifier": "$response.body#/collection_id"},
        ),
    },
    ("POST", "/v1/collections/{collection_identifier}/documents"): {
        "GetDocument": (
            "GET",
            DOCUMENT,
            {
                "collection_identifier": "$response.body#/collection_id",
                "document_id": "$response.body#/document_id",
            },
        ),
    },
    ("POST", "/v1/keys"): {
        "GetKey": ("GET", "/v1/keys/{key_id}", {"key_id": "$response.body#/key_id"}),
    },
}


def _link(paths: dict[str, Any]) -> None:
    ids = _operation_ids(paths)
    for (method, path), links in LINKS.items():
        response = paths[path][method.lower()]["responses"]["200"]
        response["links"] = {
            name: {"operationId": ids[(target_method, target)], "parameters": params}
            for name, (target_method, target, params) in links.items()
        }


def _hoist_defs(node: Any, definitions: dict[str, Any]) -> None:
    """A model schema inlined by `openapi_extra` keeps its `$defs` and `#/$defs/...` refs,
    which resolve against the document root: moved to the components, refs rewritten."""
    if isinstance(node, dict):
        for name, definition in node.pop("$defs", {}).items():
            definitions.setdefault(name, definition)
            _hoist_defs(definition, definitions)
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            node["$ref"] = "#/components/schemas/" + ref.removeprefix("#/$defs/")
        for value in node.values():
            _hoist_defs(value, definitions)
    elif isinstance(node, list):
        for value in node:
            _hoist_defs(value, definitions)


def _object_body(operation: dict[str, Any]) -> None:
    """An optional body documented by body_doc: FastAPI's `anyOf [object, null]` under the
    model's own `type: object` reads as both; the model's object is what the route takes."""
    content = operation.get("requestBody", {}).get("content", {})
    schema = content.get("application/json", {}).get("schema", {})
    if "anyOf" in schema and "properties" in schema:
        del schema["anyOf"]


def build_openapi(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    components = schema.setdefault("components", {})
    definitions = components.setdefault("schemas", {})
    for model in (ErrorResponse, StreamEvent):  # referenced by what build_openapi adds
        doc = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, definition in {**doc.pop("$defs", {}), model.__name__: doc}.items():
            definitions.setdefault(name, definition)
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        for method in route.methods or ():
            operation = schema["paths"][route.path_format][method.lower()]
            responses = operation["responses"]
            _object_body(operation)
            derived = _derived(route, method, "requestBody" in operation)
            if 422 not in derived and "HTTPValidationError" in str(responses.get("422")):
                responses.pop("422")  # FastAPI's default for any parameter; none fails here
            for code in sorted(derived):
                if code == 422 or str(code) not in responses:  # 422: ours, not FastAPI's
                    responses[str(code)] = _error_response(code)
            _secure(operation)
    # FastAPI's own validation-error models are not what any route answers.
    for name in ("HTTPValidationError", "ValidationError"):
        definitions.pop(name, None)
    components["securitySchemes"] = SECURITY_SCHEMES
    _hoist_defs(schema["paths"], definitions)
    _link(schema["paths"])
    return schema
