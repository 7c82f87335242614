"""Kubernetes' official `generated.proto` files (vendored in tests/api_specs/kubernetes/, the Go import path
under it) read into message tables, and the protobuf wire format read with them: what the kube emulator needs
to decode the bodies kubectl sends (protobuf.py).

The files are go-to-protobuf output: proto2, one package per file, top-level messages only, fields
`optional|repeated <type> <jsonName> = <n>;` or `map<K, V> <jsonName> = <n>;`, and no enums, oneofs or
nested messages (checked: `load()` raises on anything else, so a new construct cannot be skipped silently).
Field names are the JSON names (go-to-protobuf names each field after its `json:` tag).
Wire format: https://protobuf.dev/programming-guides/encoding/ (varint, 64-bit, length-delimited, 32-bit;
packed repeated scalars; a map field is a repeated entry message {key = 1, value = 2}).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tests.specs import API_SPECS

PROTO_ROOT = API_SPECS / "kubernetes"
SCALARS = frozenset({"string", "bytes", "bool", "int32", "int64", "uint32", "uint64", "double", "float"})
_PACKAGE = re.compile(r"^package ([\w.]+);", re.M)
_MESSAGE = re.compile(r"^message (\w+) \{\n(.*?)^\}", re.M | re.S)
_FIELD = re.compile(r"^\s*(?:(optional|repeated) ([\w.]+)|map<(\w+), ([\w.]+)>) (\w+) = (\d+);$")
_ALLOWED = re.compile(r"^(syntax|package|import|option) .*;$")


class ProtoError(ValueError):
    """The bytes are not a valid encoding of the message (truncated, bad wire type, bad UTF-8)."""


@dataclass(frozen=True)
class Field:
    name: str
    type: str  # a scalar, or a fully qualified message name (no leading dot)
    repeated: bool = False
    map_key: str | None = None  # set for map<K, V> fields; `type` is then V


@dataclass(frozen=True)
class Message:
    name: str  # fully qualified
    fields: dict[int, Field]
    annotations: frozenset[str]  # the `// +protobuf...` lines above it, e.g. "+protobuf.nullable=true"


def _strip_comments(text: str) -> str:
    return re.sub(r"/\*.*?\*/", "", text, flags=re.S)


def _qualify(type_name: str, package: str) -> str:
    if type_name in SCALARS:
        return type_name
    return type_name[1:] if type_name.startswith(".") else f"{package}.{type_name}"


def _annotations(text: str, start: int) -> frozenset[str]:
    lines = text[:start].rstrip("\n").split("\n")
    found: list[str] = []
    for line in reversed(lines):
        if not line.startswith("//"):
            break
        if line.startswith("// +protobuf"):
            found.append(line[3:].strip())
    return frozenset(found)


def parse_file(text: str) -> dict[str, Message]:
    """One generated.proto -> {fully qualified name: Message}. Raises ValueError on a construct it does not know."""
    text = _strip_comments(text)
    package_match = _PACKAGE.search(text)
    if package_match is None:
        raise ValueError("no package statement")
    package = package_match[1]
    bodies = {f"{package}.{m[1]}": m for m in _MESSAGE.finditer(text)}
    outside = _MESSAGE.sub("", text)
    for line in outside.splitlines():
        if line.strip() and not line.startswith("//") and not _ALLOWED.match(line.strip()):
            raise ValueError(f"unexpected line outside messages: {line!r}")
    messages: dict[str, Message] = {}
    for name, match in bodies.items():
        fields: dict[int, Field] = {}
        for line in match[2].splitlines():
            if not line.strip() or line.strip().startswith("//"):
                continue
            f = _FIELD.match(line)
            if f is None:
                raise ValueError(f"{name}: unexpected line {line.strip()!r}")
            label, type_name, key, value, field_name, number = f.groups()
            fields[int(number)] = Field(
                name=field_name,
                type=_qualify(value or type_name, package),
                repeated=label == "repeated" or key is not None,
                map_key=key,
            )
        messages[name] = Message(name, fields, _annotations(text, match.start()))
    return messages


@cache
def load(root: Path = PROTO_ROOT) -> dict[str, Message]:
    """Every vendored generated.proto, merged; each message type a field names must be defined."""
    messages: dict[str, Message] = {}
    for path in sorted(root.rglob("generated.proto")):
        messages.update(parse_file(path.read_text()))
    for message in messages.values():
        for field in message.fields.values():
            if field.type not in SCALARS and field.type not in messages:
                raise ValueError(f"{message.name}.{field.name}: type {field.type} is not defined in {root}")
    return messages


# ---- wire format -------------------------------------------------------------------------------------------------

VARINT, I64, LEN, I32 = 0, 1, 2, 5


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ProtoError("unexpected EOF")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 64:
            raise ProtoError("proto: integer overflow")


def fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value): an int for VARINT/I64/I32 (raw bits), bytes for LEN."""
    pos = 0
    while pos < len(data):
        key, pos = read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtoError("proto: illegal tag 0")
        value: int | bytes
        if wire == VARINT:
            value, pos = read_varint(data, pos)
        elif wire in (I64, I32):
            size = 8 if wire == I64 else 4
            if pos + size > len(data):
                raise ProtoError("unexpected EOF")
            value, pos = int.from_bytes(data[pos : pos + size], "little"), pos + size
        elif wire == LEN:
            size, pos = read_varint(data, pos)
            if pos + size > len(data):
                raise ProtoError("unexpected EOF")
            value, pos = data[pos : pos + size], pos + size
        else:
            raise ProtoError(f"proto: illegal wireType {wire}")
        yield number, wire, value


def scalar(type_name: str, wire: int, value: int | bytes) -> str | bytes | bool | int | float:
    """One scalar from its wire value, as Go's generated Unmarshal reads it."""
    if type_name == "string" or type_name == "bytes":
        if not isinstance(value, bytes):
            raise ProtoError(f"proto: wrong wireType = {wire} for a {type_name} field")
        if type_name == "bytes":
            return value
        try:
            return value.decode()
        except UnicodeDecodeError:
            raise ProtoError("proto: string field is not valid UTF-8") from None
    if not isinstance(value, int):
        raise ProtoError(f"proto: wrong wireType = {wire} for a {type_name} field")
    if type_name == "bool":
        return value != 0
    if type_name == "double":
        return float(struct.unpack("<d", value.to_bytes(8, "little"))[0])
    if type_name == "float":
        return float(struct.unpack("<f", value.to_bytes(4, "little"))[0])
    bits = 32 if type_name.endswith("32") else 64
    value &= (1 << bits) - 1
    if type_name.startswith("int") and value >= 1 << (bits - 1):
        value -= 1 << bits  # two's complement, as Go's int32(v)/int64(v)
    return value


def packed(type_name: str, data: bytes) -> list[int | bool | float]:
    """A packed repeated scalar (proto3 style; go-to-protobuf's proto2 output is unpacked, but both decode)."""
    out: list[int | bool | float] = []
    pos = 0
    while pos < len(data):
        if type_name in ("double", "float"):
            size = 8 if type_name == "double" else 4
            raw, pos = int.from_bytes(data[pos : pos + size], "little"), pos + size
            out.append(float(scalar(type_name, I64 if size == 8 else I32, raw)))
        else:
            raw, pos = read_varint(data, pos)
            item = scalar(type_name, VARINT, raw)
            assert not isinstance(item, str | bytes)
            out.append(item)
    return out
