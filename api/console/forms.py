"""The console's action forms, made from the agent action models themselves.

Each form's fields are the fields of its action's model (`domain.actions`), so the console,
the API and the workflow's validator can't disagree on what an action takes: a new field on
a model shows up on its form, and a form is validated by the same model as an API body.
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from api.errors import field_errors
from domain.actions import AgentAction
from domain.names import SUPERVISOR_TERMS

# Fields the server fills in, never the form: the action's name and who acts.
_SERVER_FIELDS = frozenset({"action", "actor"})
_ADAPTER = TypeAdapter[Any](AgentAction)


def _models() -> dict[str, type[BaseModel]]:
    union = get_args(AgentAction)[0]
    models: dict[str, type[BaseModel]] = {}
    for model in get_args(union):
        [name] = get_args(model.model_fields["action"].annotation)
        models[name] = model
    return models


ACTION_MODELS = _models()


@dataclass(frozen=True)
class FormField:
    """One input of an action's form."""

    name: str
    kind: Literal["text", "textarea", "amount", "checkbox", "select", "list", "lines"]
    required: bool
    choices: tuple[str, ...] = ()
    max_length: int | None = None
    default: str = ""


def _plain(annotation: Any) -> tuple[Any, bool]:
    """The annotation without Optional/Annotated, and whether None is allowed."""
    optional = False
    while True:
        origin = get_origin(annotation)
        if origin in (Union, types.UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            optional = optional or len(args) < len(get_args(annotation))
            annotation = args[0]
        elif origin is not None and hasattr(annotation, "__metadata__"):
            annotation = get_args(annotation)[0]
        else:
            return annotation, optional


def _max_length(info: FieldInfo) -> int | None:
    for meta in info.metadata:
        if getattr(meta, "max_length", None) is not None:
            return int(meta.max_length)
    return None


def _field(name: str, info: FieldInfo) -> FormField:
    annotation, _ = _plain(info.annotation)
    required = info.is_required()
    default = "" if required or info.default in (None, "", []) else str(info.default)
    if get_origin(annotation) is Literal:
        choices = tuple(str(c) for c in get_args(annotation))
        return FormField(name, "select", required, choices=choices, default=default)
    if annotation is bool:
        return FormField(name, "checkbox", False, default="on" if info.default else "")
    if annotation is Decimal:
        return FormField(name, "amount", required, default=default)
    if get_origin(annotation) is list:
        [member] = get_args(annotation)
        # A list of records (an inspection's lines) is a row per item line of the case.
        if isinstance(member, type) and issubclass(member, BaseModel):
            return FormField(name, "lines", required)
        return FormField(name, "list", required)
    limit = _max_length(info)
    kind: Literal["text", "textarea"] = "textarea" if (limit or 0) > 200 else "text"
    return FormField(name, kind, required, max_length=limit, default=default)


def form_fields(action: str, *, supervisor: bool = True) -> list[FormField]:
    """The inputs of an action's form, in the model's order; a supervisor's terms (fee,
    shipping payer) only on a supervisor's forms."""
    model = ACTION_MODELS[action]
    return [
        _field(name, info)
        for name, info in model.model_fields.items()
        if name not in _SERVER_FIELDS and (supervisor or name not in SUPERVISOR_TERMS)
    ]


def _rows(name: str, form: dict[str, str]) -> list[dict[str, Any]]:
    """The rows of a lines field (`<name>.<n>.<key>` inputs, one row per item line): those
    given a result; a row left blank isn't sent."""
    rows: list[dict[str, Any]] = []
    index = 0
    while f"{name}.{index}.sku" in form:
        given = {
            key: form.get(f"{name}.{index}.{key}", "").strip()
            for key in ("sku", "result", "refund_amount", "keep_item", "notes")
        }
        index += 1
        if not given["result"]:
            continue
        row: dict[str, Any] = {
            "sku": given["sku"],
            "result": given["result"],
            "keep_item": given["keep_item"] in ("on", "true", "1"),
        }
        if given["refund_amount"]:
            row["refund_amount"] = given["refund_amount"]
        if given["notes"]:
            row["notes"] = given["notes"]
        rows.append(row)
    return rows


class FormRefused(Exception):
    """A form that doesn't make a valid action: the errors name its fields."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("invalid form")
        self.errors = errors


def parse_action(action: str, form: dict[str, str]) -> Any:
    """The agent action a posted form makes; FormRefused naming the fields at fault."""
    if action not in ACTION_MODELS:
        raise FormRefused([{"field": "action", "message": "unknown action", "type": "enum"}])
    values: dict[str, Any] = {"action": action}
    for field in form_fields(action):
        raw = form.get(field.name, "").strip()
        if field.kind == "checkbox":
            values[field.name] = raw in ("on", "true", "1")
        elif field.kind == "lines":
            values[field.name] = _rows(field.name, form)
        elif field.kind == "list":
            values[field.name] = [part.strip() for part in raw.split(",") if part.strip()]
        elif raw or field.required:
            values[field.name] = raw
    try:
        return _ADAPTER.validate_python(values)
    except ValidationError as err:
        raise FormRefused(field_errors(err.errors(), body=values)) from err
