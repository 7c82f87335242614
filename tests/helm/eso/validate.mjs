// Validate each document (a JSON array on stdin) against ESO's CRD schema for its apiVersion/kind, as compiled by
// @kubernetes-models/external-secrets (generated from ESO's published CRDs). Prints one line per document:
// "ok <kind>" or "invalid <kind>: <ajv errors>"; exits 1 when any is invalid.
import { readFileSync } from "node:fs";
import { ClusterExternalSecret } from "@kubernetes-models/external-secrets/external-secrets.io/v1/ClusterExternalSecret";
import { ExternalSecret } from "@kubernetes-models/external-secrets/external-secrets.io/v1/ExternalSecret";

const models = { ClusterExternalSecret, ExternalSecret };
let failed = false;
for (const doc of JSON.parse(readFileSync(0, "utf8"))) {
  const Model = doc.apiVersion === "external-secrets.io/v1" ? models[doc.kind] : undefined;
  if (!Model) {
    console.log(`invalid ${doc.kind}: no schema for ${doc.apiVersion}`);
    failed = true;
    continue;
  }
  try {
    new Model(doc).validate();
    console.log(`ok ${doc.kind}`);
  } catch (err) {
    console.log(`invalid ${doc.kind}: ${err.message}`);
    failed = true;
  }
}
process.exit(failed ? 1 : 0);
