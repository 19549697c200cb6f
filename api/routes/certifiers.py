"""Certifiers: registered on the ProvenanceRegistry by the platform's admin (the relayer sends)."""

from api.routes.registrations import CERTIFIER, registration_router

router = registration_router(CERTIFIER)
