"""Plain-data encoding for everything that crosses the sandbox boundary.

Values are turned into JSON with *exact* type checks (``type(x) is int``), so a
subclass with a lying ``__eq__`` or ``__hash__`` is never mistaken for the
builtin it imitates: it is sent as an opaque ``{"$other": ...}`` record that
compares equal to nothing the grader expects.

Every JSON object on the wire is a tag (``$tuple``, ``$dict``, ``$bytes`` ...),
lists are lists, and scalars are scalars. This module imports only the standard
library: it is copied into the sandbox, where it runs in the student's
processes, and also runs in the pytest process, where the trusted side decodes
what the sandbox wrote.
"""

from __future__ import annotations

import math

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing would cost every interpreter of a sandbox 3 ms
    from typing import Any

MAX_DEPTH = 32
MAX_NODES = 2_000_000
MAX_STR = 8 * 1024 * 1024
REPR_LIMIT = 300


class _Budget:
    __slots__ = ("nodes",)

    def __init__(self, nodes: int) -> None:
        self.nodes = nodes


def _safe_repr(value: Any) -> str:
    try:
        text = repr(value)
    except BaseException as exc:  # a student's __repr__ may raise anything
        text = f"<unrepresentable {type(value).__name__}: {type(exc).__name__}>"
    if not isinstance(text, str):
        text = f"<unrepresentable {type(value).__name__}>"
    if len(text) > REPR_LIMIT:
        text = text[: REPR_LIMIT - 3] + "..."
    return text


def _type_name(value: Any) -> str:
    cls = type(value)
    module = getattr(cls, "__module__", "?")
    name = getattr(cls, "__qualname__", getattr(cls, "__name__", "?"))
    return name if module == "builtins" else f"{module}.{name}"


def encode(value: Any, *, max_nodes: int = MAX_NODES) -> Any:
    """Encode ``value`` as JSON-able plain data (see the module docs)."""
    return _encode(value, 0, _Budget(max_nodes))


def _encode(value: Any, depth: int, budget: _Budget) -> Any:
    budget.nodes -= 1
    if budget.nodes < 0 or depth > MAX_DEPTH:
        return {"$other": {"type": _type_name(value), "repr": "<too large or too deep to send>"}}
    cls = type(value)
    if value is None or cls in (bool, int, float, str, bytes):
        return _encode_scalar(value, cls)
    if cls is list:
        return [_encode(v, depth + 1, budget) for v in value]
    if cls is tuple:
        return {"$tuple": [_encode(v, depth + 1, budget) for v in value]}
    if cls is dict:
        return {"$dict": [[_encode(k, depth + 1, budget), _encode(v, depth + 1, budget)] for k, v in value.items()]}
    if cls is set or cls is frozenset:
        items = [_encode(v, depth + 1, budget) for v in value]
        return {"$set" if cls is set else "$frozenset": items}
    return {"$other": {"type": _type_name(value), "repr": _safe_repr(value)}}


def _encode_scalar(value: Any, cls: type) -> Any:
    """``None``, a bool, int, float, str or bytes (of exactly that type) as wire data."""
    if cls is int and abs(value) > 2**63:
        return {"$int": str(value)}
    if cls is float:
        if math.isnan(value):
            return {"$float": "nan"}
        if math.isinf(value):
            return {"$float": "inf" if value > 0 else "-inf"}
        return value
    if cls is str and len(value) > MAX_STR:
        return {"$other": {"type": "str", "repr": f"<str of {len(value)} characters, too long to send>"}}
    if cls is bytes:
        if len(value) > MAX_STR:
            return {"$other": {"type": "bytes", "repr": f"<bytes of {len(value)}, too long to send>"}}
        import base64  # bytes are rare: most interpreters of a sandbox never need it

        return {"$bytes": base64.b64encode(value).decode("ascii")}
    return value


class Opaque:
    """A value the sandbox could not send as plain data (a student object).

    It equals only another ``Opaque`` with the same type name and repr, never a
    plain value, so it cannot pass for the result a check expects.
    """

    __slots__ = ("type_name", "text")

    def __init__(self, type_name: str, text: str) -> None:
        self.type_name = type_name
        self.text = text

    def __repr__(self) -> str:
        return self.text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Opaque) and (other.type_name, other.text) == (self.type_name, self.text)

    def __hash__(self) -> int:
        return hash((self.type_name, self.text))


class WireError(ValueError):
    """Raised for data that does not follow the wire format."""


def decode(data: Any, depth: int = 0) -> Any:
    """Turn wire data back into plain Python values of exact builtin types."""
    if depth > MAX_DEPTH + 2:
        raise WireError("nesting too deep")
    if data is None or type(data) in (bool, int, float, str):
        return data
    if type(data) is list:
        return [decode(v, depth + 1) for v in data]
    if type(data) is dict and len(data) == 1:
        ((tag, body),) = data.items()
        value = _decode_tagged(tag, body, depth)
        if value is not _UNKNOWN:
            return value
    raise WireError(f"unexpected wire data of type {type(data).__name__}")


_UNKNOWN = object()
"""What :func:`_decode_tagged` returns for a tag (or a body) it does not know."""


def _decode_tagged(tag: Any, body: Any, depth: int) -> Any:
    """The value of one ``{"$tag": body}``, or :data:`_UNKNOWN`."""
    if tag == "$tuple" and type(body) is list:
        return tuple(decode(v, depth + 1) for v in body)
    if tag == "$dict" and type(body) is list:
        return _decode_dict(body, depth)
    if tag in ("$set", "$frozenset") and type(body) is list:
        try:
            items = {decode(v, depth + 1) for v in body}
        except TypeError as exc:
            raise WireError(f"unhashable set item: {exc}") from None
        return items if tag == "$set" else frozenset(items)
    if tag == "$bytes" and type(body) is str:
        try:
            import base64

            return base64.b64decode(body.encode("ascii"), validate=True)
        except (ValueError, UnicodeEncodeError):
            raise WireError("malformed $bytes") from None
    if tag == "$float" and body in ("nan", "inf", "-inf"):
        return float(body)
    if tag == "$int" and type(body) is str:
        try:
            return int(body)
        except ValueError:
            raise WireError("malformed $int") from None
    if tag == "$other" and type(body) is dict:
        return Opaque(str(body.get("type", "?"))[:200], str(body.get("repr", "?"))[:REPR_LIMIT])
    return _UNKNOWN


def _decode_dict(body: list[Any], depth: int) -> dict[Any, Any]:
    out = {}
    for pair in body:
        if type(pair) is not list or len(pair) != 2:
            raise WireError("malformed $dict entry")
        key = decode(pair[0], depth + 1)
        try:
            out[key] = decode(pair[1], depth + 1)
        except TypeError as exc:  # unhashable key
            raise WireError(f"unhashable dict key: {exc}") from None
    return out
