# Which pool identity a Coder workspace uses: the `sha1` shard rule of fic-reconcile (`--shard-hash sha1`),
# computed with Terraform built-ins only. See README.md beside this file.

terraform {
  required_version = ">= 1.0.0"
}

variable "namespace" {
  description = "The workspace's Kubernetes namespace, exactly as fic-reconcile sees it (e.g. ameide-ws-alice)."
  type        = string

  validation {
    condition     = length(var.namespace) > 0
    error_message = "The namespace must not be empty."
  }
}

variable "client_ids_json" {
  description = "The pool: AZURE_CLIENT_IDS_JSON, the ordered JSON array of client ids fic-reconcile reads (same order)."
  type        = string

  validation {
    condition = try(
      length(concat(jsondecode(var.client_ids_json), [])) > 0 &&
      alltrue([for id in jsondecode(var.client_ids_json) : substr(jsonencode(id), 0, 1) == "\"" && trimspace(id) != ""]) &&
      length(distinct([for id in jsondecode(var.client_ids_json) : lower(id)])) == length(jsondecode(var.client_ids_json)),
      false
    )
    error_message = "The client_ids_json must be a non-empty JSON array of unique, non-empty client id strings (AZURE_CLIENT_IDS_JSON)."
  }
}

locals {
  namespace  = var.namespace
  client_ids = jsondecode(var.client_ids_json)
  pool_size  = length(local.client_ids)

  # The sha1 rule: the first 32 bits of SHA-1 of the namespace's UTF-8 bytes, modulo the pool size. Keep it on
  # this one line, in terms of local.namespace and local.pool_size only: the project's tests read this line and
  # check it against fic-reconcile's own shard_index(ns, size, "sha1").
  shard_index = parseint(substr(sha1(local.namespace), 0, 8), 16) % local.pool_size

  client_id = local.client_ids[local.shard_index]
}

output "shard_index" {
  description = "The 0-based position in the pool of the identity fic-reconcile gives this namespace's FIC."
  value       = local.shard_index
}

output "client_id" {
  description = "The client id to annotate the workspace ServiceAccount with (azure.workload.identity/client-id)."
  value       = local.client_id
}
