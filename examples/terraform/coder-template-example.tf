# A Coder template (Kubernetes) whose workspace pods authenticate to Azure as the pool identity fic-reconcile
# gives their namespace a federated identity credential on. Illustrative: only the parts that matter here.
#
# fic-reconcile must run with `--shard-hash sha1` (the rule ./workspace-identity computes); with the default
# crc32 rule most namespaces would get their credential on another identity than the one annotated here.

terraform {
  required_providers {
    coder = {
      source = "coder/coder"
    }
    kubernetes = {
      source = "hashicorp/kubernetes"
    }
  }
}

data "coder_workspace" "me" {}
data "coder_workspace_owner" "me" {}

variable "client_ids_json" {
  description = "AZURE_CLIENT_IDS_JSON from the Secret coder-workspaces-azure-wi: the same ordered pool fic-reconcile reads."
  type        = string
}

locals {
  # One namespace per workspace, named as fic-reconcile's --namespace-prefix expects (default ameide-ws-).
  namespace = "ameide-ws-${lower(data.coder_workspace_owner.me.name)}-${lower(data.coder_workspace.me.name)}"
}

module "workspace_identity" {
  source = "./workspace-identity"

  namespace       = local.namespace
  client_ids_json = var.client_ids_json
}

resource "kubernetes_namespace" "workspace" {
  metadata {
    name = local.namespace
  }
}

# fic-reconcile's --service-account (default workspace): the FIC's subject is system:serviceaccount:<ns>:workspace.
resource "kubernetes_service_account" "workspace" {
  metadata {
    name      = "workspace"
    namespace = kubernetes_namespace.workspace.metadata[0].name
    annotations = {
      "azure.workload.identity/client-id" = module.workspace_identity.client_id
    }
  }
}

resource "kubernetes_pod" "workspace" {
  count = data.coder_workspace.me.start_count

  metadata {
    name      = "coder-${lower(data.coder_workspace.me.name)}"
    namespace = kubernetes_namespace.workspace.metadata[0].name
    labels = {
      # The Workload Identity webhook injects AZURE_CLIENT_ID (from the annotation above), AZURE_TENANT_ID,
      # AZURE_FEDERATED_TOKEN_FILE and the projected token into pods with this label.
      "azure.workload.identity/use" = "true"
    }
  }

  spec {
    # serviceAccountName: workspace, the annotated ServiceAccount above.
    service_account_name = kubernetes_service_account.workspace.metadata[0].name

    container {
      name    = "dev"
      image   = "codercom/enterprise-base:ubuntu"
      command = ["sh", "-c", "exec sleep infinity"] # the Coder agent's init script in a real template
    }
  }
}
