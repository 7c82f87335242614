"""HashiCorp Vault: Kubernetes auth, tokens, ACL policies (an HCL subset) and KV v2 at `secret/`, enough for
unmodified hvac 2.4.0 and for coder-token-mint.

Sources: shared/api-specs/vault/NOTES.md (§0 transport, §1 login, §2 KV v2, §3 tokens, §6 checklist) and the
source it cites: vault-plugin-auth-kubernetes path_login.go/path_role.go, hashicorp/cap jwt.go (login error
texts), vault-plugin-secrets-kv path_data.go/path_metadata.go, vault request_handling.go. One correction to
NOTES §3.3: HashiCorp Vault >= 1.16 answers a missing/expired/revoked token with two errors, "permission
denied" and "invalid token" (docs tokens.mdx "Error Responses", PR hashicorp/vault#26687, Vault's test
TestCore_HandleRequest_TokenErrInvalidToken); the bare form NOTES quotes is OpenBao's source.
Not modelled (answer 404/405): other mounts, sys/mounts, response wrapping, PATCH, subkeys, identity, namespaces.
"""

from __future__ import annotations

import functools
import json
import re
import secrets
import string
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import jwt

from tests.emulators.core import Emulator, HttpError, Request, Response, route

SYSTEM_DEFAULT_TTL = 768 * 3600  # 768h: the system default/max lease TTL (NOTES §1.2)
ALLOWED_JWT_ALGS = {"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512"}
JWT_LEEWAY = 60  # go-jose jwt.DefaultLeeway, used by cap/jwt for exp/nbf/iat
KV_WARNING = (
    "Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API endpoints to use. "
    "If using the Vault CLI, use 'vault kv get' for this operation."
)
NO_AUDIENCE_WARNING = (
    "This role does not specify an audience. In a future version of Vault, specifying an audience will be required."
)
CAPABILITIES = {"create", "read", "update", "delete", "list", "sudo", "deny", "patch", "recover", "subscribe"}
LEGACY_POLICY = {
    "deny": ["deny"],
    "read": ["read", "list"],
    "write": ["create", "read", "update", "delete", "list"],
    "sudo": ["create", "read", "update", "delete", "list", "sudo"],
}
PATH_KEYS = {
    "comment", "policy", "capabilities", "allowed_parameters", "denied_parameters", "required_parameters",
    "min_wrapping_ttl", "max_wrapping_ttl", "mfa_methods", "control_group", "subscribe_event_types",
}  # fmt: skip
WRITE_METHODS = {"POST", "PUT", "PATCH"}
UNAUTHENTICATED_OPS = {"k8s.login"}

# Vault's built-in `default` policy, as a dev server prints it (`vault read sys/policy/default`); NOTES §3.1.
DEFAULT_POLICY = """# Allow tokens to look up their own properties
path "auth/token/lookup-self" {
    capabilities = ["read"]
}

# Allow tokens to renew themselves
path "auth/token/renew-self" {
    capabilities = ["update"]
}

# Allow tokens to revoke themselves
path "auth/token/revoke-self" {
    capabilities = ["update"]
}

# Allow a token to look up its own capabilities on a path
path "sys/capabilities-self" {
    capabilities = ["update"]
}

# Allow a token to manage its own cubbyhole
path "cubbyhole/*" {
    capabilities = ["create", "read", "update", "delete", "list"]
}

# Allow a token to wrap arbitrary values in a response-wrapping token
path "sys/wrapping/wrap" {
    capabilities = ["update"]
}
"""

# NOTES §5, for the layout in DESIGN.md: data create/read/update, metadata read, the token's own lifecycle.
WRITER_POLICY = """# coder-token-writer: used only by the coder-token-mint CronJob
path "secret/data/coder-cli-session-token" {
  capabilities = ["create", "read", "update"]
}
path "secret/metadata/coder-cli-session-token" {
  capabilities = ["read"]
}
path "auth/token/lookup-self" {
  capabilities = ["read"]
}
path "auth/token/revoke-self" {
  capabilities = ["update"]
}
"""


# ---- Go formatting ------------------------------------------------------------------------------------


def go_multierror(*messages: str) -> str:
    """hashicorp/go-multierror's ListFormatFunc, which is what Vault puts in `errors` for wrapped errors."""
    if len(messages) == 1:
        return f"1 error occurred:\n\t* {messages[0]}\n\n"
    return f"{len(messages)} errors occurred:\n\t" + "\n\t".join(f"* {m}" for m in messages) + "\n\n"


def go_quote(text: str) -> str:
    return json.dumps(text)  # Go's %q for printable ASCII


def go_duration(seconds: int) -> str:
    """time.Duration.String() for whole seconds: 0s, 45s, 15m0s, 1h0m0s."""
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def parse_duration(value: Any) -> int:
    """Vault's TypeDurationSecond: an int (seconds), a digit string, or a Go duration ("15m", "1h30m")."""
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}")
    if isinstance(value, int | float):
        return int(value)
    text = str(value).strip()
    if re.fullmatch(r"\d+", text):
        return int(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"time: invalid duration {go_quote(text)}")
    factor = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    return int(sum(float(n) * factor[u] for n, u in parts))


def rfc3339(ts: float) -> str:
    """Go's RFC3339Nano in UTC: fraction without trailing zeros, `Z` suffix."""
    moment = datetime.fromtimestamp(ts, UTC)
    fraction = f"{moment.microsecond:06d}".rstrip("0")
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + "Z"


def random_token(prefix: str = "hvs.") -> str:
    alphabet = string.ascii_letters + string.digits
    return prefix + "".join(secrets.choice(alphabet) for _ in range(24))


def as_list(value: Any) -> list[str]:
    """Vault's TypeCommaStringSlice: a list, or a comma-separated string."""
    if value is None:
        return []
    items = value if isinstance(value, list) else str(value).split(",")
    return [str(item).strip() for item in items if str(item).strip()]


def sanitize_policies(names: list[str], add_default: bool) -> list[str]:
    """policyutil.SanitizePolicies: lower-case, de-duplicated, sorted; `root` swallows the rest."""
    out = {n.strip().lower() for n in names if n.strip()}
    if "root" in out:
        return ["root"]
    if add_default:
        out.add("default")
    return sorted(out)


def glob_match(pattern: str, value: str) -> bool:
    """strutil.GlobbedStringsMatch: `*` as a leading and/or trailing wildcard."""
    if pattern == "*":
        return True
    if len(pattern) > 1 and pattern.startswith("*") and pattern.endswith("*"):
        return pattern[1:-1] in value
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return pattern == value


# ---- policies: an HCL subset and the ACL ----------------------------------------------------------------

_HCL_TOKEN = re.compile(
    r'\s+|#[^\n]*|//[^\n]*|/\*.*?\*/|(?P<str>"(?:[^"\\]|\\.)*")|(?P<num>-?\d+(?:\.\d+)?)'
    r"|(?P<ident>[A-Za-z_][\w.\-]*)|(?P<punct>[{}\[\]=,:])",
    re.DOTALL,
)


class PolicyError(ValueError):
    pass


def _hcl_tokens(text: str) -> list[tuple[str, Any, int]]:
    tokens, pos = [], 0
    while pos < len(text):
        m = _HCL_TOKEN.match(text, pos)
        if not m:
            raise PolicyError(f"illegal char at line {text.count(chr(10), 0, pos) + 1}")
        line = text.count("\n", 0, pos) + 1
        if m["str"]:
            tokens.append(("str", json.loads(m["str"]), line))
        elif m["num"]:
            tokens.append(("num", float(m["num"]), line))
        elif m["ident"]:
            tokens.append(("ident", m["ident"], line))
        elif m["punct"]:
            tokens.append((m["punct"], m["punct"], line))
        pos = m.end()
    return tokens


class _HclParser:
    def __init__(self, text: str) -> None:
        self.tokens, self.i = _hcl_tokens(text), 0

    def peek(self) -> str | None:
        return self.tokens[self.i][0] if self.i < len(self.tokens) else None

    def take(self, *kinds: str) -> tuple[str, Any, int]:
        if self.peek() not in kinds:
            where = self.tokens[self.i][2] if self.i < len(self.tokens) else "end"
            raise PolicyError(f"unexpected token at line {where}, expected {' or '.join(kinds)}")
        self.i += 1
        return self.tokens[self.i - 1]

    def body(self, closing: str | None) -> list[tuple[str, list[str], Any, int]]:
        """Items `key [labels...] = value` or `key [labels...] { body }`."""
        items = []
        while self.peek() != closing:
            _, key, line = self.take("ident", "str")
            labels = []
            while self.peek() == "str":
                labels.append(self.take("str")[1])
            if self.peek() in ("=", ":"):
                self.i += 1
            items.append((key, labels, self.value(), line))
            if self.peek() == ",":
                self.i += 1
        if closing:
            self.take(closing)
        return items

    def value(self) -> Any:
        kind, val, _ = self.take("str", "num", "ident", "[", "{")
        if kind == "[":
            values = []
            while self.peek() != "]":
                values.append(self.value())
                if self.peek() == ",":
                    self.i += 1
            self.take("]")
            return values
        if kind == "{":
            return self.body("}")
        if kind == "ident":
            return {"true": True, "false": False}.get(val, val)
        return val


def parse_policy(text: str) -> dict[str, set[str]]:
    """Policy text (HCL or JSON) -> {path pattern: capabilities}. Raises PolicyError with Vault's wording."""
    try:
        if text.lstrip().startswith("{"):
            raw = json.loads(text).get("path") or {}
            items = [(p, attrs, 0) for p, attrs in raw.items()]
        else:
            items = []
            for key, labels, value, line in _HclParser(text).body(None):
                if key not in ("path", "name"):
                    raise PolicyError(go_multierror(f"invalid key {go_quote(key)} on line {line}"))
                if key == "path":
                    attrs = {k: v for k, _, v, _ in value} if isinstance(value, list) else {}
                    items.append((labels[0] if labels else "", attrs, line))
        return {pattern.lstrip("/"): _capabilities(pattern, attrs) for pattern, attrs, _ in items}
    except (ValueError, AttributeError, IndexError) as exc:
        raise PolicyError(f"failed to parse policy: {exc}") from None


def _capabilities(pattern: str, attrs: dict[str, Any]) -> set[str]:
    unknown = set(attrs) - PATH_KEYS
    if unknown:
        raise PolicyError(f"path {go_quote(pattern)}: invalid key {go_quote(sorted(unknown)[0])}")
    caps = [str(c).lower() for c in attrs.get("capabilities") or []]
    if attrs.get("policy"):
        if attrs["policy"] not in LEGACY_POLICY:
            raise PolicyError(f"path {go_quote(pattern)}: invalid policy {go_quote(str(attrs['policy']))}")
        caps += LEGACY_POLICY[attrs["policy"]]
    for cap in caps:
        if cap not in CAPABILITIES:
            raise PolicyError(f"path {go_quote(pattern)}: invalid capability {go_quote(cap)}")
    return {"deny"} if "deny" in caps else set(caps)


@dataclass(frozen=True)
class Acl:
    """Merged rules of a token's policies: same pattern -> union of capabilities; deny wins (policies.mdx)."""

    rules: dict[str, frozenset[str]]

    @classmethod
    def of(cls, policy_texts: list[str]) -> Acl:
        merged: dict[str, set[str]] = {}
        for text in policy_texts:
            for pattern, caps in parse_policy(text).items():
                merged.setdefault(pattern, set()).update(caps)
        return cls({p: frozenset({"deny"} if "deny" in c else c) for p, c in merged.items()})

    def allows(self, path: str, capability: str) -> bool:
        caps = self.capabilities(path, listing=capability == "list")
        return "deny" not in caps and capability in caps

    def capabilities(self, path: str, listing: bool = False) -> frozenset[str]:
        exact = {p for p in self.rules if not p.endswith("*") and "+" not in p.split("/")}
        for candidate in (path, path.rstrip("/")) if listing else (path,):
            if candidate in exact:
                return self.rules[candidate]
        matching = [p for p in self.rules if p not in exact and _pattern_matches(p, path)]
        return self.rules[max(matching, key=_priority)] if matching else frozenset()


def _pattern_matches(pattern: str, path: str) -> bool:
    is_prefix = pattern.endswith("*")
    segs, parts = pattern.removesuffix("*").split("/"), path.split("/")
    if len(parts) < len(segs) or (not is_prefix and len(parts) != len(segs)):
        return False
    for i, seg in enumerate(segs):
        if seg == "+":
            continue
        if i == len(segs) - 1 and is_prefix:
            if not parts[i].startswith(seg):
                return False
        elif parts[i] != seg:
            return False
    return True


def _priority(pattern: str) -> tuple[int, bool, int, int, str]:
    """policies.mdx "Priority matching": a later first wildcard, no trailing `*`, fewer `+`, longer, larger."""
    wildcards = [i for i, ch in enumerate(pattern) if ch in "*+"]
    return (wildcards[0], not pattern.endswith("*"), -pattern.split("/").count("+"), len(pattern), pattern)


# ---- state ----------------------------------------------------------------------------------------------


@dataclass
class Token:
    id: str
    policies: list[str]
    display_name: str
    path: str
    created: float
    ttl: int  # creation TTL in seconds; 0 = never expires (root)
    max_expires: float | None
    meta: dict[str, str] | None = None
    renewable: bool = True
    orphan: bool = True
    entity_id: str = ""
    accessor: str = field(default_factory=lambda: random_token(""))
    expires: float | None = None
    last_renewal: float | None = None

    def __post_init__(self) -> None:
        if self.ttl and self.expires is None:
            self.expires = self.created + self.ttl


@dataclass
class KvVersion:
    data: dict[str, Any] | None
    created: float
    deletion_time: float | None = None
    destroyed: bool = False


@dataclass
class KvKey:
    created: float
    updated: float
    versions: dict[int, KvVersion] = field(default_factory=dict)
    current_version: int = 0
    oldest_version: int = 0
    max_versions: int = 0
    cas_required: bool = False
    delete_version_after: int = 0
    custom_metadata: dict[str, str] | None = None


def _locked(fn: Callable[..., Response]) -> Callable[..., Response]:
    @functools.wraps(fn)
    def wrapper(self: VaultEmulator, req: Request) -> Response:
        with self.lock:
            return fn(self, req)

    return wrapper


class VaultEmulator(Emulator):
    service = "vault"
    kv_mount = "secret"

    def reset(self) -> None:
        now = self.platform.clock.timestamp()
        if "root_token" not in self.__dict__:
            self.root_token = self.platform.remember_secret(
                random_token()
            )  # the env file names it: stable across resets
        root = Token(self.root_token, ["root"], "root", "auth/token/root", now, 0, None, renewable=False)
        self.tokens: dict[str, Token] = {self.root_token: root}
        self.policies: dict[str, str] = {"default": DEFAULT_POLICY, "coder-token-writer": WRITER_POLICY}
        self.kv: dict[str, KvKey] = {}
        self.kv_config = {"max_versions": 0, "cas_required": False, "delete_version_after": 0}
        # X-Vault-Request / X-Vault-Namespace of recent requests: recorded, never required (NOTES §0)
        self.headers_seen: deque[dict[str, str | None]] = deque(maxlen=1000)
        b = self.platform.baseline
        self.roles: dict[str, dict[str, Any]] = {}
        self._store_role(
            b.vault_role,
            {
                "bound_service_account_names": [b.mint_service_account],
                "bound_service_account_namespaces": [b.jobs_namespace],
                "audience": "vault",  # NOTES §1.3: optional, but set; the env file's JWT carries aud "vault"
                "token_policies": [b.vault_role],
                "token_ttl": 900,
            },
        )

    # ---- dialect --------------------------------------------------------------------------------------

    def error(self, status: int, code: str, message: str) -> Response:
        return Response(status, {"errors": [message]})

    def extra_headers(self) -> dict[str, str]:
        return {"Cache-Control": "no-store"}

    def dispatch(self, req: Request) -> Response:
        if req.method == "GET" and req.q("list") == "true":
            req.method = "LIST"  # NOTES §0: `?list=true` is the LIST operation
        self.headers_seen.append(
            {
                "X-Vault-Request": req.headers.get("X-Vault-Request"),
                "X-Vault-Namespace": req.headers.get("X-Vault-Namespace"),
            }
        )
        if req.method in WRITE_METHODS and req.path.endswith("/"):
            # request_handling.go: checked before the token and before routing
            return self.error(400, "BadRequest", "cannot write to a path ending in '/'")
        return super().dispatch(req)

    def authenticate(self, req: Request) -> None:
        if req.op in UNAUTHENTICATED_OPS:
            return
        with self.lock:
            self._authorize(req, self._capability(req))

    def not_found(self, req: Request) -> Response:
        if not req.path.startswith("/v1/"):
            return Response(404, {"errors": []})
        logical = self._logical_path(req)
        try:
            with self.lock:
                self._authorize(req, self._capability(req))  # the ACL runs before routing (NOTES §3.3)
        except HttpError as exc:
            return exc.response
        mounts = (f"{self.kv_mount}/", "auth/kubernetes/", "auth/token/", "sys/")
        if logical.startswith(mounts):
            return self.error(404, "NotFound", go_multierror("unsupported path"))
        return self.error(404, "NotFound", f"no handler for route {go_quote(logical)}. route entry not found.")

    def method_not_allowed(self, req: Request) -> Response:
        try:
            with self.lock:
                self._authorize(req, self._capability(req))
        except HttpError as exc:
            return exc.response
        return self.error(405, "MethodNotAllowed", go_multierror("unsupported operation"))

    # ---- tokens and the ACL ---------------------------------------------------------------------------

    def _logical_path(self, req: Request) -> str:
        path = unquote(req.path).removeprefix("/v1/")
        return path + "/" if req.method == "LIST" and not path.endswith("/") else path

    def _bearer(self, req: Request) -> str:
        token = req.headers.get("X-Vault-Token") or ""
        auth = req.headers.get("Authorization") or ""
        return token or (auth[len("Bearer ") :].strip() if auth.startswith("Bearer ") else "")

    def caller(self, req: Request) -> Token:
        """The request's live token, or the 403 Vault gives a missing / unknown / expired / revoked one."""
        presented = self._bearer(req)
        if not presented:
            raise HttpError(403, {"errors": [go_multierror("permission denied")]})
        token = self.tokens.get(presented)
        if token and token.expires is not None and self.platform.clock.timestamp() >= token.expires:
            del self.tokens[presented]
            token = None
        if token is None:
            raise HttpError(403, {"errors": [go_multierror("permission denied", "invalid token")]})
        return token

    def _authorize(self, req: Request, capability: str) -> Token:
        token = self.caller(req)
        if "root" in token.policies:
            return token
        texts = [self.policies[p] for p in token.policies if p in self.policies]
        if not Acl.of(texts).allows(self._logical_path(req), capability):
            raise HttpError(403, {"errors": [go_multierror("permission denied")]})
        return token

    def _capability(self, req: Request) -> str:
        """The capability an operation needs; for writes an existence check decides create vs update."""
        if req.method not in ("POST", "PUT"):
            return {"GET": "read", "LIST": "list", "DELETE": "delete", "PATCH": "patch"}.get(req.method, "update")
        exists: dict[str, Callable[[], bool]] = {
            "kv.write": lambda: req.params.get("path", "") in self.kv,
            "kv.metadata.write": lambda: req.params.get("path", "") in self.kv,
            "k8s.role.write": lambda: req.params.get("name", "").lower() in self.roles,
        }
        check = exists.get(req.op)
        return "update" if check is None or check() else "create"

    # ---- responses ------------------------------------------------------------------------------------

    def _ok(
        self,
        data: Any = None,
        *,
        auth: dict[str, Any] | None = None,
        warnings: list[str] | None = None,
        mount_type: str = "kv",
        status: int = 200,
        extra: dict[str, Any] | None = None,
    ) -> Response:
        """The full envelope (NOTES §0.1); the docs' samples show only `data`/`auth`."""
        body = {
            "request_id": str(uuid.uuid4()),
            "lease_id": "",
            "renewable": False,
            "lease_duration": 0,
            "data": data,
            "wrap_info": None,
            "warnings": warnings,
            "auth": auth,
            "mount_type": mount_type,
            **(extra or {}),
        }
        return Response(status, body)

    @staticmethod
    def _no_content() -> Response:
        return Response(204, None, {"Content-Type": "application/json"})  # Vault sets it even without a body

    @staticmethod
    def _missing() -> Response:
        return Response(404, {"errors": []})

    @staticmethod
    def _bad(message: str) -> HttpError:
        return HttpError(400, {"errors": [message]})

    def _body(self, req: Request) -> dict[str, Any]:
        try:
            body = req.json()
        except ValueError as exc:
            raise self._bad(f"failed to parse JSON input: {exc}") from None
        if body is None:
            return {}
        if not isinstance(body, dict):
            raise self._bad("failed to parse JSON input: expected a JSON object")
        return body

    # ---- Kubernetes auth ------------------------------------------------------------------------------

    def _store_role(self, name: str, fields: dict[str, Any], existing: dict[str, Any] | None = None) -> list[str]:
        """path_role.go pathRoleCreateUpdate: validation texts and the missing-audience warning."""
        role = dict(existing or {"audience": "", "token_policies": [], "token_ttl": 0, "token_max_ttl": 0})
        aliases = {"policies": "token_policies", "ttl": "token_ttl", "max_ttl": "token_max_ttl"}
        for name_given, value in fields.items():
            key = aliases.get(name_given, name_given)
            if name_given in aliases and key in fields:
                continue  # the token_* name wins over its deprecated alias
            if key in ("bound_service_account_names", "bound_service_account_namespaces", "token_policies"):
                role[key] = as_list(value)
            elif key in ("token_ttl", "token_max_ttl", "token_period"):
                try:
                    role[key] = parse_duration(value)
                except ValueError as exc:
                    raise self._bad(f"error converting input {value} for field {go_quote(key)}: {exc}") from None
            elif key in ("audience", "alias_name_source", "token_type", "token_no_default_policy"):
                role[key] = value
        if role.get("token_max_ttl") and role["token_ttl"] > role["token_max_ttl"]:
            raise self._bad("token ttl should not be greater than token max ttl")
        names, namespaces = role.get("bound_service_account_names") or [], role.get("bound_service_account_namespaces")
        if not names:
            raise self._bad(f"{go_quote('bound_service_account_names')} can not be empty")
        if not namespaces:
            raise self._bad(
                f"{go_quote('bound_service_account_namespaces')} can not be empty if "
                f"{go_quote('bound_service_account_namespace_selector')} is not set"
            )
        if (len(names) > 1 and "*" in names) or (len(namespaces) > 1 and "*" in namespaces):
            raise self._bad('can not mix "*" with values')
        self.roles[name.lower()] = role
        if not str(role.get("audience") or "").strip():
            return [NO_AUDIENCE_WARNING]
        return []

    @route("POST", r"/v1/auth/kubernetes/role/(?P<name>[^/]+)", "k8s.role.write")
    @route("PUT", r"/v1/auth/kubernetes/role/(?P<name>[^/]+)", "k8s.role.write")
    @_locked
    def role_write(self, req: Request) -> Response:
        name = req.params["name"]
        warnings = self._store_role(name, self._body(req), self.roles.get(name.lower()))
        return self._ok(None, warnings=warnings, mount_type="kubernetes") if warnings else self._no_content()

    @route("GET", r"/v1/auth/kubernetes/role/(?P<name>[^/]+)", "k8s.role.read")
    @_locked
    def role_read(self, req: Request) -> Response:
        role = self.roles.get(req.params["name"].lower())
        if role is None:
            return self._missing()
        data = {
            "bound_service_account_names": role["bound_service_account_names"],
            "bound_service_account_namespaces": role["bound_service_account_namespaces"],
            "bound_service_account_namespace_selector": "",
            "audience": role.get("audience") or "",
            "alias_name_source": role.get("alias_name_source") or "serviceaccount_uid",
            "token_policies": role["token_policies"],
            "token_ttl": role["token_ttl"],
            "token_max_ttl": role["token_max_ttl"],
            "token_period": role.get("token_period", 0),
            "token_type": role.get("token_type") or "default",
            "token_no_default_policy": bool(role.get("token_no_default_policy")),
            "token_bound_cidrs": [],
            "token_explicit_max_ttl": 0,
            "token_num_uses": 0,
        }
        return self._ok(data, mount_type="kubernetes")

    @route("DELETE", r"/v1/auth/kubernetes/role/(?P<name>[^/]+)", "k8s.role.delete")
    @_locked
    def role_delete(self, req: Request) -> Response:
        self.roles.pop(req.params["name"].lower(), None)
        return self._no_content()

    @route("LIST", r"/v1/auth/kubernetes/role/?", "k8s.role.list")
    @_locked
    def role_list(self, req: Request) -> Response:
        return self._ok({"keys": sorted(self.roles)}, mount_type="kubernetes") if self.roles else self._missing()

    @route("POST", r"/v1/auth/kubernetes/login", "k8s.login")
    @route("PUT", r"/v1/auth/kubernetes/login", "k8s.login")
    @_locked
    def login(self, req: Request) -> Response:
        """path_login.go, in its order; a rejected login is a bare (unwrapped) message (NOTES §1.3)."""
        body = self._body(req)
        role_name, token = str(body.get("role") or ""), str(body.get("jwt") or "")
        if not role_name:
            raise self._bad("missing role")
        if not token:
            raise self._bad("missing jwt")
        role = self.roles.get(role_name.lower())
        if role is None:
            raise self._bad(f"invalid role name {go_quote(role_name)}")
        claims = self._validated_claims(token, role)
        sa_name, sa_ns, sa_uid = _service_account(claims)
        names = role["bound_service_account_names"]
        if not (len(names) == 1 and names[0] == "*") and not any(glob_match(n, sa_name) for n in names):
            raise HttpError(403, {"errors": ["service account name not authorized"]})
        namespaces = role["bound_service_account_namespaces"]
        if not (namespaces[0] == "*" or any(glob_match(n, sa_ns) for n in namespaces)):
            raise HttpError(403, {"errors": ["namespace not authorized"]})
        try:  # the TokenReview: the cluster signed it, and it has not expired
            self.platform.cluster_key.verify(token, None, self.platform.clock.timestamp())
        except jwt.InvalidTokenError:
            raise HttpError(403, {"errors": ["permission denied"]}) from None
        issued = self._issue_login_token(role_name, role, sa_name, sa_ns, sa_uid)
        return self._ok(None, auth=self._auth_block(issued), mount_type="kubernetes")

    def _validated_claims(self, token: str, role: dict[str, Any]) -> dict[str, Any]:
        """hashicorp/cap jwt.validateAll without a key set: parse, alg, audience, time claims with leeway."""
        try:
            header = jwt.get_unverified_header(token)
            claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
        except jwt.InvalidTokenError:
            raise HttpError(403, {"errors": ["permission denied"]}) from None  # "error verifying token signature"
        if header.get("alg") not in ALLOWED_JWT_ALGS:
            raise HttpError(403, {"errors": ["permission denied"]})  # go-jose refuses HS256/none while parsing
        audience = str(role.get("audience") or "").strip()
        aud = claims.get("aud")
        if audience and audience not in (aud if isinstance(aud, list) else [aud]):
            message = "invalid audience (aud) claim: audience claim does not match any expected audience"
            raise HttpError(403, {"errors": [message]})
        self._check_times(claims)
        return claims

    def _check_times(self, claims: dict[str, Any]) -> None:
        now = self.platform.clock.timestamp()
        iat, exp, nbf = (int(claims.get(k) or 0) for k in ("iat", "exp", "nbf"))
        if not (iat or exp or nbf):
            return
        exp = exp or max(iat, nbf) + 150
        nbf = nbf or (iat or exp - 150)
        if now + JWT_LEEWAY < nbf:
            raise HttpError(403, {"errors": ["invalid not before (nbf) claim: token not yet valid"]})
        if now - JWT_LEEWAY > exp:
            raise HttpError(403, {"errors": ["invalid expiration time (exp) claim: token is expired"]})
        if iat and now + JWT_LEEWAY < iat:
            raise HttpError(403, {"errors": ["invalid issued at (iat) claim: token issued in the future"]})

    def _issue_login_token(self, role_name: str, role: dict[str, Any], name: str, ns: str, uid: str) -> Token:
        now = self.platform.clock.timestamp()
        ttl = role.get("token_period") or role["token_ttl"] or SYSTEM_DEFAULT_TTL
        max_ttl = role["token_max_ttl"] or SYSTEM_DEFAULT_TTL
        token = Token(
            self.platform.remember_secret(random_token()),
            sanitize_policies(role["token_policies"], not role.get("token_no_default_policy")),
            f"kubernetes-{ns}-{name}",
            "auth/kubernetes/login",
            now,
            min(ttl, max_ttl),
            now + max_ttl,
            meta={
                "role": role_name,
                "service_account_name": name,
                "service_account_namespace": ns,
                "service_account_secret_name": "",
                "service_account_uid": uid,
            },
            entity_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"vault-entity/{uid}")),
        )
        self.tokens[token.id] = token
        return token

    def _auth_block(self, token: Token) -> dict[str, Any]:
        remaining = 0 if token.expires is None else max(0, round(token.expires - self.platform.clock.timestamp()))
        return {
            "client_token": token.id,
            "accessor": token.accessor,
            "policies": token.policies,
            "token_policies": token.policies,
            "metadata": token.meta,
            "lease_duration": remaining,
            "renewable": token.renewable,
            "entity_id": token.entity_id,
            "token_type": "service",
            "orphan": token.orphan,
            "mfa_requirement": None,
            "num_uses": 0,
        }

    # ---- token store ----------------------------------------------------------------------------------

    @route("GET", r"/v1/auth/token/lookup-self", "token.lookup-self")
    @_locked
    def lookup_self(self, req: Request) -> Response:
        token, now = self.caller(req), self.platform.clock.timestamp()
        data = {
            "accessor": token.accessor,
            "creation_time": int(token.created),
            "creation_ttl": token.ttl,
            "display_name": token.display_name,
            "entity_id": token.entity_id,
            "expire_time": None if token.expires is None else rfc3339(token.expires),
            "explicit_max_ttl": 0,
            "id": token.id,
            "issue_time": rfc3339(token.created),
            "meta": token.meta,
            "num_uses": 0,
            "orphan": token.orphan,
            "path": token.path,
            "policies": token.policies,
            "renewable": token.renewable,
            "ttl": 0 if token.expires is None else max(0, int(token.expires - now)),
            "type": "service",
        }
        if token.last_renewal is not None:
            data["last_renewal"] = rfc3339(token.last_renewal)
            data["last_renewal_time"] = int(token.last_renewal)
        return self._ok(data, mount_type="token")

    @route("POST", r"/v1/auth/token/revoke-self", "token.revoke-self")
    @route("PUT", r"/v1/auth/token/revoke-self", "token.revoke-self")
    @_locked
    def revoke_self(self, req: Request) -> Response:
        self.tokens.pop(self.caller(req).id, None)
        return self._no_content()

    @route("POST", r"/v1/auth/token/renew-self", "token.renew-self")
    @route("PUT", r"/v1/auth/token/renew-self", "token.renew-self")
    @_locked
    def renew_self(self, req: Request) -> Response:
        token, now = self.caller(req), self.platform.clock.timestamp()
        if not token.renewable or token.expires is None:
            raise self._bad("lease is not renewable")
        increment = self._body(req).get("increment")
        try:
            wanted = parse_duration(increment) if increment not in (None, "", 0) else token.ttl
        except ValueError as exc:
            raise self._bad(str(exc)) from None
        cap = token.max_expires - now if token.max_expires is not None else wanted
        token.expires, token.last_renewal = now + max(0, min(wanted, cap)), now
        return self._ok(None, auth=self._auth_block(token), mount_type="token")

    @route("POST", r"/v1/auth/token/create", "token.create")
    @route("PUT", r"/v1/auth/token/create", "token.create")
    @_locked
    def token_create(self, req: Request) -> Response:
        """A child token (for tests and an SRE's scoped VAULT_TOKEN): policies, ttl, meta, no_default_policy."""
        parent, body, now = self.caller(req), self._body(req), self.platform.clock.timestamp()
        wanted = as_list(body.get("policies")) or [p for p in parent.policies if p != "default"]
        policies = sanitize_policies(wanted, not body.get("no_default_policy"))
        if "root" not in parent.policies and not set(policies) - {"default"} <= set(parent.policies):
            raise self._bad("child policies must be subset of parent")
        try:
            ttl = 0 if policies == ["root"] else parse_duration(body.get("ttl") or SYSTEM_DEFAULT_TTL)
        except ValueError as exc:
            raise self._bad(str(exc)) from None
        name = str(body.get("display_name") or "")
        token = Token(
            self.platform.remember_secret(random_token()),
            policies,
            f"token-{name}" if name else "token",
            "auth/token/create",
            now,
            ttl,
            now + SYSTEM_DEFAULT_TTL if ttl else None,
            meta={str(k): str(v) for k, v in (body.get("meta") or {}).items()} or None,
            renewable=bool(body.get("renewable", True)) and ttl > 0,
            orphan=False,
        )
        self.tokens[token.id] = token
        return self._ok(None, auth=self._auth_block(token), mount_type="token")

    # ---- ACL policies ---------------------------------------------------------------------------------

    @route("PUT", r"/v1/sys/policies/acl/(?P<name>[^/]+)", "policy.write")
    @route("POST", r"/v1/sys/policies/acl/(?P<name>[^/]+)", "policy.write")
    @route("PUT", r"/v1/sys/policy/(?P<name>[^/]+)", "policy.write")
    @route("POST", r"/v1/sys/policy/(?P<name>[^/]+)", "policy.write")
    @_locked
    def policy_write(self, req: Request) -> Response:
        name, body = req.params["name"].strip().lower(), self._body(req)
        text = str(body.get("policy") or body.get("rules") or "")
        if name == "root":
            raise self._bad('cannot update "root" policy')
        if not text.strip():
            raise self._bad("'policy' parameter not supplied or empty")
        try:
            parse_policy(text)
        except PolicyError as exc:
            raise self._bad(str(exc)) from None
        self.policies[name] = text
        return self._no_content()

    @route("GET", r"/v1/sys/policies/acl/(?P<name>[^/]+)", "policy.read")
    @route("GET", r"/v1/sys/policy/(?P<name>[^/]+)", "policy.read")
    @_locked
    def policy_read(self, req: Request) -> Response:
        name = req.params["name"].strip().lower()
        text = "" if name == "root" else self.policies.get(name)
        if text is None:
            return self._missing()
        if "/sys/policy/" in req.path:  # the legacy endpoint also repeats the fields at the top level
            return self._ok({"name": name, "rules": text}, mount_type="system", extra={"name": name, "rules": text})
        return self._ok({"name": name, "policy": text}, mount_type="system")

    @route("DELETE", r"/v1/sys/policies/acl/(?P<name>[^/]+)", "policy.delete")
    @route("DELETE", r"/v1/sys/policy/(?P<name>[^/]+)", "policy.delete")
    @_locked
    def policy_delete(self, req: Request) -> Response:
        name = req.params["name"].strip().lower()
        if name in ("default", "root"):
            raise self._bad(f"cannot delete {go_quote(name)} policy")
        self.policies.pop(name, None)
        return self._no_content()

    @route("LIST", r"/v1/sys/policies/acl/?", "policy.list")
    @route("GET", r"/v1/sys/policy", "policy.list")
    @_locked
    def policy_list(self, req: Request) -> Response:
        keys = sorted({*self.policies, "root"})
        if req.method == "GET":
            return self._ok(
                {"keys": keys, "policies": keys}, mount_type="system", extra={"keys": keys, "policies": keys}
            )
        return self._ok({"keys": keys}, mount_type="system")

    # ---- KV v2 ----------------------------------------------------------------------------------------

    def _now(self) -> float:
        return self.platform.clock.timestamp()

    def _is_deleted(self, version: KvVersion) -> bool:
        return version.destroyed or (version.deletion_time is not None and version.deletion_time <= self._now())

    def _version_meta(self, key: KvKey, number: int) -> dict[str, Any]:
        v = key.versions[number]
        return {
            "created_time": rfc3339(v.created),
            "custom_metadata": key.custom_metadata or None,
            "deletion_time": "" if v.deletion_time is None else rfc3339(v.deletion_time),
            "destroyed": v.destroyed,
            "version": number,
        }

    @route("GET", r"/v1/secret/data/(?P<path>.+)", "kv.read")
    @_locked
    def kv_read(self, req: Request) -> Response:
        key = self.kv.get(req.params["path"])
        raw = req.q("version") or "0"
        if not re.fullmatch(r"\d+", raw):
            raise self._bad(f'error converting input {raw} for field "version"')
        if key is None:
            return self._missing()
        number = int(raw) or key.current_version
        if number not in key.versions:
            return self._missing()  # never written, or purged past max_versions
        meta = self._version_meta(key, number)
        if self._is_deleted(key.versions[number]):  # NOTES §2.1: 404 *with* the envelope, no `errors`
            return self._ok({"data": None, "metadata": meta}, status=404)
        return self._ok({"data": key.versions[number].data, "metadata": meta})

    @route("POST", r"/v1/secret/data/(?P<path>.+)", "kv.write")
    @route("PUT", r"/v1/secret/data/(?P<path>.+)", "kv.write")
    @_locked
    def kv_write(self, req: Request) -> Response:
        body, path, now = self._body(req), req.params["path"], self._now()
        if body.get("data") is None:
            raise self._bad("no data provided")
        if not isinstance(body["data"], dict):
            raise self._bad(
                f'error converting input for field "data": expected a map, got {type(body["data"]).__name__}'
            )
        key = self.kv.get(path) or KvKey(now, now)
        self._check_and_set(body.get("options") or {}, key)
        number = key.current_version + 1
        after = [s for s in (key.delete_version_after, self.kv_config["delete_version_after"]) if s > 0]
        key.versions[number] = KvVersion(body["data"], now, now + min(after) if after else None)
        key.current_version, key.updated = number, now
        self._purge(key)
        self.kv[path] = key
        return self._ok(self._version_meta(key, number))

    def _check_and_set(self, options: dict[str, Any], key: KvKey) -> None:
        """path_data.go validateCheckAndSetOption."""
        if not isinstance(options, dict):
            raise self._bad('error converting input for field "options"')
        if (self.kv_config["cas_required"] or key.cas_required) and "cas" not in options:
            raise self._bad("check-and-set parameter required for this call")
        if "cas" in options:
            try:
                cas = int(str(options["cas"]).strip() or 0)  # mapstructure.WeakDecode: "1" works
            except ValueError:
                raise self._bad("error parsing check-and-set parameter") from None
            if cas != key.current_version:
                raise self._bad("check-and-set parameter did not match the current version")

    def _purge(self, key: KvKey) -> None:
        limit = max(key.max_versions, int(self.kv_config["max_versions"])) or 10
        purged = sorted(key.versions)[: max(0, len(key.versions) - limit)]
        for number in purged:
            del key.versions[number]
        if purged:
            key.oldest_version = min(key.versions)

    @route("DELETE", r"/v1/secret/data/(?P<path>.+)", "kv.delete-latest")
    @_locked
    def kv_delete_latest(self, req: Request) -> Response:
        key = self.kv.get(req.params["path"])
        latest = key.versions.get(key.current_version) if key else None
        if latest is not None and not self._is_deleted(latest):
            latest.deletion_time = self._now()
        return self._no_content()

    def _versions_arg(self, req: Request) -> list[int]:
        try:
            versions = [int(v) for v in as_list(self._body(req).get("versions"))]
        except ValueError:
            raise self._bad('error converting input for field "versions"') from None
        if not versions:
            raise self._bad("no version number provided")
        return versions

    @route("POST", r"/v1/secret/(?P<action>delete|undelete|destroy)/(?P<path>.+)", "kv.versions")
    @route("PUT", r"/v1/secret/(?P<action>delete|undelete|destroy)/(?P<path>.+)", "kv.versions")
    @_locked
    def kv_versions(self, req: Request) -> Response:
        numbers, key, now = self._versions_arg(req), self.kv.get(req.params["path"]), self._now()
        for number in numbers:
            version = key.versions.get(number) if key else None
            if version is None or version.destroyed:
                continue
            if req.params["action"] == "delete" and not self._is_deleted(version):
                version.deletion_time = now
            elif req.params["action"] == "undelete":
                version.deletion_time = None
            elif req.params["action"] == "destroy":
                version.destroyed, version.data = True, None
        return self._no_content()

    @route("GET", r"/v1/secret/metadata/(?P<path>.+)", "kv.metadata.read")
    @_locked
    def kv_metadata_read(self, req: Request) -> Response:
        key = self.kv.get(req.params["path"])
        if key is None:
            return self._missing()
        versions = {
            str(n): {
                "created_time": rfc3339(v.created),
                "deletion_time": "" if v.deletion_time is None else rfc3339(v.deletion_time),
                "destroyed": v.destroyed,
            }
            for n, v in sorted(key.versions.items())
        }
        data = {
            "cas_required": key.cas_required,
            "created_time": rfc3339(key.created),
            "current_version": key.current_version,
            "custom_metadata": key.custom_metadata or None,
            "delete_version_after": go_duration(key.delete_version_after),
            "max_versions": key.max_versions,
            "oldest_version": key.oldest_version,
            "updated_time": rfc3339(key.updated),
            "versions": versions,
        }
        return self._ok(data)

    @route("POST", r"/v1/secret/metadata/(?P<path>.+)", "kv.metadata.write")
    @route("PUT", r"/v1/secret/metadata/(?P<path>.+)", "kv.metadata.write")
    @_locked
    def kv_metadata_write(self, req: Request) -> Response:
        """path_metadata.go pathMetadataWrite: only the fields present change; custom_metadata is replaced."""
        body, now = self._body(req), self._now()
        fields = {
            k: body[k] for k in ("max_versions", "cas_required", "delete_version_after", "custom_metadata") if k in body
        }
        if not fields:
            return self._no_content()  # the fast path: nothing is created
        custom = None
        if "custom_metadata" in fields:
            custom = {str(k): "" if v is None else str(v) for k, v in (fields["custom_metadata"] or {}).items()}
            problems = _custom_metadata_problems(custom)
            if problems:
                raise self._bad(go_multierror(*problems))
        try:
            dva = parse_duration(fields["delete_version_after"]) if "delete_version_after" in fields else None
        except ValueError as exc:
            raise self._bad(str(exc)) from None
        key = self.kv.setdefault(req.params["path"], KvKey(now, now))
        key.max_versions = int(fields.get("max_versions", key.max_versions))
        key.cas_required = bool(fields.get("cas_required", key.cas_required))
        key.delete_version_after = key.delete_version_after if dva is None else dva
        key.custom_metadata = key.custom_metadata if custom is None else custom
        warnings = None
        if fields.get("cas_required") is False and self.kv_config["cas_required"]:
            warnings = ['"cas_required" set to false, but is mandated by backend config. This value will be ignored.']
        return self._ok(None, warnings=warnings) if warnings else self._no_content()

    @route("DELETE", r"/v1/secret/metadata/(?P<path>.+)", "kv.metadata.delete")
    @_locked
    def kv_metadata_delete(self, req: Request) -> Response:
        self.kv.pop(req.params["path"], None)
        return self._no_content()

    @route("LIST", r"/v1/secret/metadata(?:/(?P<path>.*))?", "kv.metadata.list")
    @_locked
    def kv_list(self, req: Request) -> Response:
        prefix = req.params.get("path", "")
        prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        rests = [k[len(prefix) :] for k in self.kv if k.startswith(prefix)]
        keys = sorted({r.split("/")[0] + "/" if "/" in r else r for r in rests})
        return self._ok({"keys": keys}) if keys else self._missing()

    @route("GET", r"/v1/secret/config", "kv.config.read")
    @_locked
    def kv_config_read(self, req: Request) -> Response:
        cfg = self.kv_config
        data = {
            "cas_required": cfg["cas_required"],
            "delete_version_after": go_duration(int(cfg["delete_version_after"])),
            "max_versions": cfg["max_versions"],
        }
        return self._ok(data)

    @route("POST", r"/v1/secret/config", "kv.config.write")
    @route("PUT", r"/v1/secret/config", "kv.config.write")
    @_locked
    def kv_config_write(self, req: Request) -> Response:
        body = self._body(req)
        try:
            if "delete_version_after" in body:
                self.kv_config["delete_version_after"] = parse_duration(body["delete_version_after"])
        except ValueError as exc:
            raise self._bad(str(exc)) from None
        if "max_versions" in body:
            self.kv_config["max_versions"] = int(body["max_versions"])
        if "cas_required" in body:
            self.kv_config["cas_required"] = bool(body["cas_required"])
        return self._no_content()

    _KV_API = r"(?!(?:data|metadata|delete|undelete|destroy|config|subkeys)(?:/|$))"

    @route("GET", rf"/v1/secret/{_KV_API}.*", "kv.invalid-path")
    @route("LIST", rf"/v1/secret/{_KV_API}.*", "kv.invalid-path")
    @route("POST", rf"/v1/secret/{_KV_API}.*", "kv.invalid-path")
    @route("PUT", rf"/v1/secret/{_KV_API}.*", "kv.invalid-path")
    @route("DELETE", rf"/v1/secret/{_KV_API}.*", "kv.invalid-path")
    def kv_invalid_path(self, req: Request) -> Response:
        return self._ok(None, warnings=[KV_WARNING], status=404)  # NOTES §2.1 / §6.12, kv backend.go


def _service_account(claims: dict[str, Any]) -> tuple[str, str, str]:
    """Projected-token claims (`kubernetes.io`), falling back to the legacy flat claims (path_login.go)."""
    nested = claims.get("kubernetes.io")
    if isinstance(nested, dict):
        sa = nested.get("serviceaccount") or {}
        return str(sa.get("name") or ""), str(nested.get("namespace") or ""), str(sa.get("uid") or "")
    prefix = "kubernetes.io/serviceaccount/"
    return (
        str(claims.get(prefix + "service-account.name") or ""),
        str(claims.get(prefix + "namespace") or ""),
        str(claims.get(prefix + "service-account.uid") or ""),
    )


def _custom_metadata_problems(custom: dict[str, str]) -> list[str]:
    """path_metadata.go validateCustomMetadata (64 keys, key <= 128, value <= 512, printable)."""
    prefix = "custom_metadata validation failed"
    if len(custom) > 64:
        return [f"{prefix}: payload must contain at most 64 keys, provided {len(custom)}"]
    problems = []
    for k, v in custom.items():
        if not 0 < len(k) <= 128:
            problems.append(f"{prefix}: length of key {go_quote(k)} is {len(k)} but must be 0 < len(key) <= 128")
        if not 0 < len(v) <= 512:
            problems.append(
                f"{prefix}: length of value for key {go_quote(k)} is {len(v)} but must be 0 < len(value) <= 512"
            )
        if not k.isprintable():
            problems.append(f"{prefix}: key {go_quote(k)} ({k}) contains unprintable characters")
        if not v.isprintable():
            problems.append(f"{prefix}: value for key {go_quote(k)} contains unprintable characters")
    return problems
