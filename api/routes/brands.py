"""Brands: registered on the ProvenanceRegistry by the platform's admin (the relayer sends)."""

from api.routes.registrations import BRAND, registration_router

router = registration_router(BRAND)
