"""The request-body models of the app and their fields, for tests that hold a rule over every
field (text hygiene, list caps) so a new route cannot forget it."""

from __future__ import annotations

import typing
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel
from pydantic.fields import FieldInfo


def api_routes(routes: Any) -> list[APIRoute]:
    out: list[APIRoute] = []
    for r in routes:
        if isinstance(r, APIRoute):
            out.append(r)
        inner = getattr(r, "original_router", None)
        if inner is not None:
            out.extend(api_routes(inner.routes))
    return out


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in typing.get_args(annotation):
        yield from _models_in(arg)


def request_fields(app: FastAPI) -> Iterator[tuple[str, FieldInfo]]:
    """("Model.field", field) of every request body model and of the models nested in them."""
    seen: set[type[BaseModel]] = set()
    todo: list[type[BaseModel]] = []
    for route in api_routes(app.routes):
        for param in route.dependant.body_params:
            todo.extend(_models_in(param.field_info.annotation))
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, f in model.model_fields.items():
            yield f"{model.__name__}.{name}", f
            todo.extend(_models_in(f.annotation))
