"""The official Telnyx SDK (``telnyx``, a test dependency only) as an oracle for our wire format.

Every request a Telnyx test sends is checked against the SDK's own description of the endpoint,
and every fake answer against the SDK's response model:

* ``check_request(request)``: the method and path must be an endpoint of the SDK; the JSON body
  is validated with ``pydantic.TypeAdapter`` over the endpoint's ``*Params`` TypedDict (body
  params), the query string over its query ``*Params``, and the ``Idempotency-Key`` header
  must be one the params define. A key the TypedDict does not define is a violation too
  (pydantic ignores extra keys of a TypedDict, so the walk here reports them).
* ``check_response(method, path, status, body)``: a 2xx JSON body is validated against the
  SDK's response model (``cast_to``, or for a paged list the page's item model and
  ``DefaultFlatPaginationMeta``); a field the model does not declare is a violation, so a
  fake cannot answer with fields Telnyx does not send. Error answers are Telnyx's
  ``{"errors": [{"code", "title", "detail", "source": {"pointer"}}]}`` or FastAPI's
  ``{"detail": ...}``.
* ``checked(handler)`` wraps an ``httpx.MockTransport`` handler with both checks
  (``FakeTelnyx`` does this for every Telnyx test).

The endpoint table is read from the SDK's sources (``telnyx/resources/**``, the sync resource
classes): for each method, the HTTP verb, the path template, the body and query params types
(``maybe_transform(..., X_params.XParams)``) and the ``cast_to``/``page=`` model. So the
Missions API (``/ai/missions/...``) is covered like every other endpoint.

A violation raises ``OracleViolation`` (an ``AssertionError``), which no ``except
ProviderError`` in our code swallows, so the test fails where the request was made.
"""

from __future__ import annotations

import ast
import functools
import importlib
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pydantic
import typing_extensions

__all__ = [
    "Endpoint",
    "OracleViolation",
    "check_request",
    "check_response",
    "checked",
    "endpoint_for",
    "request_problems",
    "response_problems",
]

#: The SDK release the oracle speaks for (pinned in pyproject's test extras).
SDK_VERSION = "4.189.0"
_BASE_PATH = "/v2"
_VERBS = {"_get": "GET", "_post": "POST", "_put": "PUT", "_patch": "PATCH", "_delete": "DELETE"}
_LIST_VERB = "_get_api_list"


#: How many requests and answers were checked in this process (the test session's summary
#: prints them: ``tests/conftest.py``).
CHECKED = {"requests": 0, "answers": 0}


class OracleViolation(AssertionError):
    """A request or fake answer that the official SDK does not describe."""


@dataclass(frozen=True)
class Endpoint:
    method: str
    template: str  # "/ai/assistants/{assistant_id}/scheduled_events"
    pattern: re.Pattern[str]
    sdk_method: str  # "telnyx.resources.ai....ScheduledEventsResource.create"
    body: Any = None  # the body *Params TypedDict
    query: Any = None  # the query *Params TypedDict
    response: Any = None  # the cast_to type (a model, a union, None for no content)
    page_item: Any = None  # the item model of a paged list


# ---------------------------------------------------------------------- the endpoint table


def _sdk_root() -> Path:
    import telnyx

    assert telnyx.__version__ == SDK_VERSION, (
        f"the oracle was written for telnyx {SDK_VERSION}, found {telnyx.__version__}"
    )
    return Path(telnyx.__file__).parent


def _imports(tree: ast.Module, package: str) -> dict[str, str]:
    """Local name -> dotted target ("module" or "module:attr") of a resource module's imports."""
    names: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            base = importlib.util.resolve_name("." * node.level + (node.module or ""), package)
            for alias in node.names:
                names[alias.asname or alias.name] = f"{base}:{alias.name}"
    return names


def _path_of(call: ast.Call) -> str | None:
    if not call.args:
        return None
    first = call.args[0]
    if isinstance(first, ast.Constant) and isinstance(first.value, str):
        return first.value
    if (
        isinstance(first, ast.Call)
        and isinstance(first.func, ast.Name)
        and first.func.id == "path_template"
        and first.args
        and isinstance(first.args[0], ast.Constant)
    ):
        return str(first.args[0].value)
    return None


def _params_in(node: ast.AST | None) -> str | None:
    """The ``x_params.XParams`` named inside ``node`` (a ``maybe_transform`` call)."""
    if node is None:
        return None
    for sub in ast.walk(node):
        if (
            isinstance(sub, ast.Attribute)
            and isinstance(sub.value, ast.Name)
            and sub.attr.endswith("Params")
        ):
            return f"{sub.value.id}.{sub.attr}"
    return None


def _kwarg(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _scan_module(path: Path, root: Path) -> list[dict[str, Any]]:
    relative = path.relative_to(root.parent).with_suffix("")
    module = ".".join(relative.parts)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imports = _imports(tree, module.rsplit(".", 1)[0])
    found: list[dict[str, Any]] = []
    for cls in tree.body:
        if not isinstance(cls, ast.ClassDef) or cls.name.startswith("Async"):
            continue
        for fn in cls.body:
            if not isinstance(fn, ast.FunctionDef) or fn.name.startswith("_"):
                continue
            for call in ast.walk(fn):
                if not (
                    isinstance(call, ast.Call)
                    and isinstance(call.func, ast.Attribute)
                    and isinstance(call.func.value, ast.Name)
                    and call.func.value.id == "self"
                    and call.func.attr in (*_VERBS, _LIST_VERB)
                ):
                    continue
                template = _path_of(call)
                if template is None:
                    continue
                options = _kwarg(call, "options")
                query = None
                if isinstance(options, ast.Call):
                    query = _params_in(_kwarg(options, "query"))
                cast_to = _kwarg(call, "cast_to")
                if (
                    isinstance(cast_to, ast.Call)
                    and isinstance(cast_to.func, ast.Name)
                    and cast_to.func.id == "cast"
                    and len(cast_to.args) == 2
                ):
                    cast_to = cast_to.args[1]
                page = _kwarg(call, "page")
                item = page.slice if isinstance(page, ast.Subscript) else None
                found.append(
                    {
                        "method": "GET" if call.func.attr == _LIST_VERB else _VERBS[call.func.attr],
                        "template": template,
                        "sdk_method": f"{module}.{cls.name}.{fn.name}",
                        "body": _params_in(_kwarg(call, "body")),
                        "query": query,
                        "response": ast.unparse(cast_to) if cast_to is not None else None,
                        "page_item": ast.unparse(item) if item is not None else None,
                        "imports": imports,
                    }
                )
                break
    return found


def _resolve(name: str | None, imports: Mapping[str, str]) -> Any:
    """``x_params.XParams`` or ``XModel`` through the resource module's imports."""
    if name is None or name == "NoneType":
        return None
    head, _, attr = name.partition(".")
    target = imports.get(head)
    if target is None:
        return getattr(__builtins__, name, None) if isinstance(__builtins__, dict) else None
    module_name, _, imported = target.partition(":")
    try:
        value: Any = importlib.import_module(f"{module_name}.{imported}")
    except ModuleNotFoundError:
        value = getattr(importlib.import_module(module_name), imported)
    return getattr(value, attr) if attr else value


def _compile(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    regex = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
    return re.compile(f"^{regex}$")


@functools.cache
def _table() -> tuple[dict[str, Any], ...]:
    root = _sdk_root()
    rows: list[dict[str, Any]] = []
    for path in sorted((root / "resources").rglob("*.py")):
        rows.extend(_scan_module(path, root))
    return tuple(rows)


@functools.cache
def _endpoint(method: str, template: str) -> Endpoint:
    row = next(r for r in _table() if r["method"] == method and r["template"] == template)
    imports = row["imports"]
    return Endpoint(
        method=method,
        template=template,
        pattern=_compile(template),
        sdk_method=row["sdk_method"],
        body=_resolve(row["body"], imports),
        query=_resolve(row["query"], imports),
        response=_resolve(row["response"], imports),
        page_item=_resolve(row["page_item"], imports),
    )


def endpoint_for(method: str, path: str) -> Endpoint | None:
    """The SDK endpoint for ``method`` and a request path (with or without ``/v2``); a literal
    segment beats a ``{placeholder}`` (``/ai/assistants/import`` is not an assistant id)."""
    path = path.removeprefix(_BASE_PATH) or "/"
    matches = [
        r["template"]
        for r in _table()
        if r["method"] == method and _compile(r["template"]).match(path)
    ]
    if not matches:
        return None
    best = max(matches, key=lambda t: (len(re.sub(r"\{[^}]+\}", "", t)), -t.count("{")))
    return _endpoint(method, best)


# ---------------------------------------------------------------------- walking TypedDicts


def _strip(tp: Any) -> tuple[Any, list[Any]]:
    """The type under ``Annotated``/``Required``/``NotRequired``, and the Annotated metadata."""
    metadata: list[Any] = []
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            metadata.extend(tp.__metadata__)
            tp = tp.__origin__
        elif origin in (typing.Required, typing.NotRequired):
            tp = typing.get_args(tp)[0]
        else:
            return tp, metadata


def _alias(metadata: Iterable[Any]) -> str | None:
    for item in metadata:
        alias = getattr(item, "alias", None)
        if isinstance(alias, str):
            return alias
    return None


def _fields(td: Any) -> dict[str, tuple[str, Any]]:
    """Wire name -> (Python name, type) of a TypedDict's keys."""
    hints = typing.get_type_hints(td, include_extras=True)
    out: dict[str, tuple[str, Any]] = {}
    for name, hint in hints.items():
        _, metadata = _strip(hint)
        out[_alias(metadata) or name] = (name, hint)
    return out


def _rename(tp: Any, value: Any, where: str, problems: list[str]) -> Any:
    """``value`` with wire keys renamed to the TypedDict's Python names; keys the TypedDict
    does not define are reported in ``problems`` (and left out, so pydantic judges the rest)."""
    tp, _ = _strip(tp)
    origin = typing.get_origin(tp)
    if typing_extensions.is_typeddict(tp) and isinstance(value, Mapping):
        fields = _fields(tp)
        renamed: dict[str, Any] = {}
        for key, item in value.items():
            if key not in fields:
                problems.append(f"{where}{key}: not a field of {tp.__name__}")
                continue
            name, hint = fields[key]
            renamed[name] = _rename(hint, item, f"{where}{key}.", problems)
        return renamed
    if origin in (typing.Union, types.UnionType):
        candidates = [
            a for a in typing.get_args(tp) if typing_extensions.is_typeddict(_strip(a)[0])
        ]
        if isinstance(value, Mapping) and candidates:
            best: tuple[int, Any, list[str]] | None = None
            for candidate in candidates:
                found: list[str] = []
                result = _rename(candidate, value, where, found)
                if best is None or len(found) < best[0]:
                    best = (len(found), result, found)
            assert best is not None
            problems.extend(best[2])
            return best[1]
        return value
    if origin in (list, Sequence, Iterable, tuple) or (
        origin is not None and getattr(origin, "__name__", "") == "SequenceNotStr"
    ):
        args = typing.get_args(tp)
        if isinstance(value, list) and args:
            return [_rename(args[0], v, f"{where}{i}.", problems) for i, v in enumerate(value)]
        return value
    if origin in (dict, Mapping):
        args = typing.get_args(tp)
        if isinstance(value, Mapping) and len(args) == 2:
            return {k: _rename(args[1], v, f"{where}{k}.", problems) for k, v in value.items()}
    return value


@functools.cache
def _adapter(tp: Any) -> pydantic.TypeAdapter[Any]:
    return pydantic.TypeAdapter(tp)


def _validate(tp: Any, value: Any, what: str) -> list[str]:
    problems: list[str] = []
    renamed = _rename(tp, value, "", problems)
    try:
        _adapter(tp).validate_python(renamed)
    except pydantic.ValidationError as exc:
        for error in exc.errors(include_url=False):
            location = ".".join(str(p) for p in error["loc"])
            problems.append(f"{location}: {error['msg']} (got {_short(error.get('input'))})")
    return [f"{what} {p}" for p in problems]


def _query_value(tp: Any, values: list[str]) -> Any:
    """A query parameter's value as the TypedDict would hold it (lists for sequences)."""
    bare, _ = _strip(tp)
    origin = typing.get_origin(bare)
    if origin in (list, Sequence, Iterable) or (
        origin is not None and getattr(origin, "__name__", "") == "SequenceNotStr"
    ):
        return values
    return values[-1]


def _query_dict(td: Any, params: httpx.QueryParams) -> dict[str, Any]:
    """The query string as the TypedDict's wire dict: ``page[number]`` is an alias of a flat
    key or a key of a nested TypedDict (``filter[status]`` -> ``{"filter": {"status": ...}}``)."""
    fields = _fields(td)
    out: dict[str, Any] = {}
    for key in dict.fromkeys(params.keys()):
        values = params.get_list(key)
        if key in fields:
            out[key] = _query_value(fields[key][1], values)
            continue
        parts = re.findall(r"[^\[\]]+", key)
        if len(parts) > 1 and parts[0] in fields:
            node = out.setdefault(parts[0], {})
            for part in parts[1:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = values[-1]
        else:
            out[key] = values[-1]
    return out


# ---------------------------------------------------------------------- the checks


def request_problems(request: httpx.Request) -> list[str]:
    """What the SDK does not describe in ``request`` (empty when it matches)."""
    where = f"{request.method} {request.url.path}"
    endpoint = endpoint_for(request.method, request.url.path)
    if endpoint is None:
        return [f"{where}: no such endpoint in the telnyx SDK {SDK_VERSION}"]
    problems: list[str] = []
    if request.url.params:
        if endpoint.query is None:
            keys = ", ".join(request.url.params.keys())
            problems.append(f"query: {endpoint.sdk_method} defines no query parameters ({keys})")
        else:
            query = _query_dict(endpoint.query, request.url.params)
            problems += _validate(endpoint.query, query, "query")
    key = request.headers.get("Idempotency-Key")
    header_fields = _fields(endpoint.body) if endpoint.body is not None else {}
    if key is not None and "Idempotency-Key" not in header_fields:
        problems.append(f"header Idempotency-Key: {endpoint.sdk_method} does not define one")
    if request.content:
        try:
            body = httpx.Response(200, content=request.content).json()
        except ValueError:
            problems.append("body: not JSON")
        else:
            if endpoint.body is None:
                problems.append(f"body: {endpoint.sdk_method} takes no body")
            else:
                if key is not None:
                    body = {**body, "Idempotency-Key": key}
                problems += _validate(endpoint.body, body, "body")
    elif endpoint.body is not None and request.method in ("POST", "PUT", "PATCH"):
        problems += _validate(endpoint.body, {}, "body")
    return [f"{where} ({endpoint.sdk_method}): {p}" for p in problems]


def _extras(value: Any, where: str) -> list[str]:
    """Fields a validated SDK model kept as extras (it does not declare them)."""
    found: list[str] = []
    if isinstance(value, pydantic.BaseModel):
        for key in value.model_extra or {}:
            found.append(f"{where}{key}: not a field of {type(value).__name__}")
        for name in type(value).model_fields:
            found += _extras(getattr(value, name), f"{where}{name}.")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found += _extras(item, f"{where}{index}.")
    elif isinstance(value, dict):
        for key, item in value.items():
            found += _extras(item, f"{where}{key}.")
    return found


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _model_problems(tp: Any, value: Any, what: str, *, extras: bool = True) -> list[str]:
    try:
        validated = _adapter(tp).validate_python(value)
    except pydantic.ValidationError as exc:
        return [
            f"{what} {'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
            f" (got {_short(e.get('input'))})"
            for e in exc.errors(include_url=False)
        ]
    return [f"{what} {p}" for p in _extras(validated, "")] if extras else []


def _error_problems(body: Any) -> list[str]:
    if body is None:
        return []
    if isinstance(body, Mapping) and isinstance(body.get("errors"), list):
        problems = []
        for index, item in enumerate(body["errors"]):
            if not isinstance(item, Mapping):
                problems.append(f"errors.{index}: not an object")
                continue
            unknown = set(item) - {"code", "title", "detail", "source", "meta"}
            if unknown:
                problems.append(f"errors.{index}: unknown keys {sorted(unknown)}")
            source = item.get("source")
            if source is not None and (
                not isinstance(source, Mapping) or set(source) - {"pointer", "parameter"}
            ):
                problems.append(f"errors.{index}.source: not {{pointer, parameter}}")
        return problems
    if isinstance(body, Mapping) and set(body) == {"detail"}:
        return []
    return [f"error body is neither Telnyx's errors list nor FastAPI's detail: {body!r}"]


def response_problems(method: str, path: str, status: int, body: Any) -> list[str]:
    """What the SDK does not describe in a fake answer to ``method path``."""
    where = f"{method} {path.removeprefix(_BASE_PATH)} -> {status}"
    endpoint = endpoint_for(method, path)
    if endpoint is None:
        return [f"{where}: no such endpoint in the telnyx SDK {SDK_VERSION}"]
    if status >= 400:
        return [f"{where}: {p}" for p in _error_problems(body)]
    problems: list[str] = []
    if endpoint.page_item is not None:
        from telnyx.pagination import DefaultFlatPaginationMeta

        if not isinstance(body, Mapping):
            problems.append(f"a page must be an object with data and meta, got {body!r}")
        else:
            unknown = set(body) - {"data", "meta"}
            if unknown:
                problems.append(f"page: unknown keys {sorted(unknown)}")
            problems += _model_problems(list[endpoint.page_item], body.get("data") or [], "data")
            if body.get("meta") is not None:
                # Telnyx's meta also carries total_results and page_size, which the SDK's
                # DefaultFlatPaginationMeta leaves out: types are checked, extras allowed.
                problems += _model_problems(
                    DefaultFlatPaginationMeta, body["meta"], "meta", extras=False
                )
    elif endpoint.response is None:
        if body is not None:
            problems.append(f"{endpoint.sdk_method} answers no content, got {body!r}")
    else:
        problems += _model_problems(endpoint.response, body, "body")
    return [f"{where} ({endpoint.sdk_method}): {p}" for p in problems]


def check_request(request: httpx.Request) -> None:
    """Raise ``OracleViolation`` when the SDK does not describe ``request``."""
    problems = request_problems(request)
    CHECKED["requests"] += 1
    if problems:
        raise OracleViolation("\n".join(problems))


def check_response(method: str, path: str, status: int, body: Any) -> None:
    """Raise ``OracleViolation`` when the SDK does not describe a fake's answer."""
    problems = response_problems(method, path, status, body)
    CHECKED["answers"] += 1
    if problems:
        raise OracleViolation("\n".join(problems))


def checked(
    handler: Callable[[httpx.Request], httpx.Response],
) -> Callable[[httpx.Request], httpx.Response]:
    """``handler`` with the request checked before it runs and its answer after."""

    def check(request: httpx.Request) -> httpx.Response:
        check_request(request)
        response = handler(request)
        response.read()
        body = response.json() if response.content else None
        check_response(request.method, request.url.path, response.status_code, body)
        return response

    return check
