"""Request dependencies: stores, the authenticated principal, the selected namespace."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from stagewise.domain.records import NamespaceRecord
from stagewise.errors import InvalidRequest
from stagewise.services.context import Stores
from stagewise.services.keys import Principal, authenticate
from stagewise.services.namespaces import get_namespace


def get_stores(request: Request) -> Stores:
    stores: Stores = request.app.state.stores
    return stores


StoresDep = Annotated[Stores, Depends(get_stores)]


def get_principal(
    stores: StoresDep, authorization: Annotated[str | None, Header()] = None
) -> Principal:
    return authenticate(stores, authorization)


CurrentKey = Annotated[Principal, Depends(get_principal)]


def get_writer(principal: CurrentKey) -> Principal:
    principal.require_write()
    return principal


WriterKey = Annotated[Principal, Depends(get_writer)]


def get_namespace_dep(
    stores: StoresDep,
    principal: CurrentKey,
    x_namespace: Annotated[str | None, Header()] = None,
) -> NamespaceRecord:
    identifier = x_namespace or principal.namespace_id
    if not identifier:
        raise InvalidRequest(
            "Select a namespace with the 'X-Namespace' header (its name or id)",
            code="namespace_required",
        )
    ns = get_namespace(stores, identifier=identifier)
    principal.require_namespace(ns.namespace_id)
    return ns


NamespaceDep = Annotated[NamespaceRecord, Depends(get_namespace_dep)]
