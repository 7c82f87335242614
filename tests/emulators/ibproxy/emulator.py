"""The AKS identity binding proxy: where a pod that opted in to an identity binding sends its Entra token request.

What the docs say (MicrosoftDocs azure-aks-docs articles/aks/identity-bindings-concepts.md, identity-bindings.md):
with identity bindings "token exchange requests route through a cluster-specific identity binding proxy operated by
AKS"; the workload identity webhook injects AZURE_KUBERNETES_TOKEN_PROXY, AZURE_KUBERNETES_SNI_NAME and
AZURE_KUBERNETES_CA_FILE into a pod annotated `azure.workload.identity/use-identity-binding: "true"`; which service
accounts may use an identity is Kubernetes RBAC: verb `use-managed-identity`, API group `cid.wi.aks.azure.com`,
resource = the identity's client id; the identity's one FIC `aks-identity-binding` trusts the issuer
`https://ib.oic.prod-aks.azure.com/<tenant>/<client-id>`. The client side is azure-identity's own
(WorkloadIdentityCredential(enable_azure_proxy=True), azure/identity/_internal/token_binding_transport_*.py): the
same client-assertion POST `/{tenant}/oauth2/v2.0/token`, sent to the proxy URL with the SNI name and CA given.
The projected token's audience is `api://AKSIdentityBinding` (secrets-store-csi-driver-provider-azure's auth
package: IdentityBindingTokenAudience).

So the proxy here: (1) authenticates the presented service-account token as the API server does (kube/authn.py,
audience api://AKSIdentityBinding); (2) asks the kube emulator's RBAC (the same authorizer SubjectAccessReview
answers from, kube/authz.py) whether that service account may `use-managed-identity` the requested client id;
(3) needs a Succeeded identity binding of that identity on the cluster (arm/aks.py); (4) signs its own assertion
as the IB issuer and exchanges it with Entra, whose answer (including AADSTS70021 while the binding's FIC has not
propagated, or a refusal once the FIC is gone) it relays unchanged.
[unconfirmed], not documented anywhere we could read: the proxy's own refusals (status, `error` code, text; here
401 invalid_client, 403 access_denied / unauthorized_client in Entra's error shape), the IB assertion's subject
(the identity's client id, as arm/aks.py writes the FIC) and its lifetime.
"""

from __future__ import annotations

import ssl
import uuid
from typing import Any
from urllib.parse import parse_qs, urlencode

import requests

from tests.emulators.core import Emulator, HttpError, Request, Response, route
from tests.emulators.kube.authn import Refused
from tests.emulators.kube.authz import Attributes

BINDING_AUDIENCE = "api://AKSIdentityBinding"
CID_GROUP = "cid.wi.aks.azure.com"
USE_VERB = "use-managed-identity"
SNI_NAME = "ib-proxy.aks.emulator.test"  # the certificate's name the client checks (AZURE_KUBERNETES_SNI_NAME)
ASSERTION_LIFETIME_S = 600


class IbProxyEmulator(Emulator):
    service = "ibproxy"

    def start(self, ssl_context: ssl.SSLContext, port: int = 0) -> None:
        """Its own certificate: azure-identity checks it against the SNI name, not the URL's host."""
        cert = self.platform.ca.issue_cert("127.0.0.1", "localhost", SNI_NAME)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(ctx)
        super().start(ctx, port)

    def env(self) -> dict[str, str]:
        """What the webhook injects into a pod that uses an identity binding."""
        return {
            "AZURE_KUBERNETES_TOKEN_PROXY": self.url,
            "AZURE_KUBERNETES_SNI_NAME": SNI_NAME,
            "AZURE_KUBERNETES_CA_FILE": str(self.platform.ca_path),
        }

    def error(self, status: int, code: str, message: str) -> Response:
        return Response(status, {"error": code, "error_description": message})

    @route("POST", r"/(?P<tenant>[^/]+)/oauth2/v2\.0/token", "token")
    def token(self, req: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs(req.body.decode(), keep_blank_values=True).items()}
        client_id = form.get("client_id", "")
        user = self._service_account(form.get("client_assertion", ""))
        self._authorize(user, client_id)
        if self.platform.arm.binding_for_client_id(client_id) is None:
            text = f"no identity binding on this cluster for client id {client_id}"
            raise self._refuse(403, "unauthorized_client", text)
        form["client_assertion"] = self._ib_assertion(req.params["tenant"], client_id)
        upstream = requests.post(
            f"{self.platform.entra.url}/{req.params['tenant']}/oauth2/v2.0/token",
            data=urlencode(form),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            verify=str(self.platform.ca_path),
            timeout=30,
        )
        return Response(upstream.status_code, upstream.content)

    def _service_account(self, assertion: str) -> dict[str, Any]:
        try:
            return self.platform.kube.authenticate_service_account(assertion, [BINDING_AUDIENCE])["user"]
        except Refused as refused:
            raise self._refuse(401, "invalid_client", f"the service account token was refused: {refused}") from None

    def _authorize(self, user: dict[str, Any], client_id: str) -> None:
        attrs = Attributes(user["username"], tuple(user.get("groups") or ()), USE_VERB, CID_GROUP, client_id)
        if self.platform.kube.authorize(attrs) is None:
            raise self._refuse(
                403,
                "access_denied",
                f'User "{attrs.user}" cannot {USE_VERB} resource "{client_id}" in API group "{CID_GROUP}"',
            )

    def _ib_assertion(self, tenant: str, client_id: str) -> str:
        from tests.emulators.arm.aks import ib_issuer

        now = int(self.platform.clock.timestamp())
        claims = {
            "iss": ib_issuer(tenant, client_id),
            "sub": client_id,
            "aud": ["api://AzureADTokenExchange"],
            "iat": now,
            "nbf": now,
            "exp": now + ASSERTION_LIFETIME_S,
            "jti": str(uuid.uuid4()),
        }
        return self.platform.remember_secret(self.platform.ib_key.sign(claims))

    @staticmethod
    def _refuse(status: int, code: str, text: str) -> HttpError:
        return HttpError(status, {"error": code, "error_description": text})
