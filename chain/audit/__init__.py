"""The auditor's toolkit: recompute LiveProof's records from the chain (and the public batch
manifests) alone. No web or database code here."""
