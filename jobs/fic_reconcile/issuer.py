"""Is --issuer the string Entra will compare? A FIC matches a token only when its issuer equals the token's
`iss` exactly, trailing slash included (AKS issuers end in `/`), and a FIC that can never match passes every
other check. The issuer's own OpenID discovery document (`<issuer>/.well-known/openid-configuration`,
published by AKS at the issuer URL and by the kube-apiserver, ServiceAccountIssuerDiscovery) names the exact
string, so fic-reconcile reads it before any write: a different string is a configuration error (exit 2);
a document it cannot read is a warning, since the run can still do right by a correct setting."""

from __future__ import annotations

from dataclasses import dataclass

import requests

from lib import reach
from lib.http import make_session

PATH = ".well-known/openid-configuration"


@dataclass(frozen=True)
class IssuerCheck:
    matches: bool
    published: str = ""  # the issuer the document names
    problem: str = ""  # why the document could not be read; "" when it was


def discovery_url(issuer: str, base: str = "") -> str:
    """`<issuer>/.well-known/openid-configuration`, or, through `base` (a test platform standing in for the
    issuer's host), `<base><host>/<path>/.well-known/openid-configuration`."""
    bare = issuer.rstrip("/")
    if not base:
        return f"{bare}/{PATH}"
    return f"{base.rstrip('/')}/{bare.split('://', 1)[-1]}/{PATH}"


def check(issuer: str, base: str = "", session: requests.Session | None = None) -> IssuerCheck:
    url = discovery_url(issuer, base)
    http = session or make_session(client="oidc-discovery", retries=2, timeout=(5.0, 10.0))
    try:
        response = http.get(url)
        response.raise_for_status()
        published = response.json()["issuer"]
    except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
        reason = reach.describe(exc) or f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
        return IssuerCheck(False, problem=f"could not read {url}: {reason}")
    if not isinstance(published, str):
        return IssuerCheck(False, problem=f"{url} names no issuer string")
    return IssuerCheck(published == issuer, published)
