"""Benchmarks: ``liveproof bench ingest`` (and later ones), each on a throw-away stack."""
