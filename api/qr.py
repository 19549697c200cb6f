"""QR codes (PNG and SVG) for the links a shopper scans: GS1 Digital Link product URLs and
receipt pages."""

from __future__ import annotations

import io
from typing import Literal

import segno
from starlette.responses import Response

from api.problems import ProblemError

QrFormat = Literal["png", "svg"]
_MEDIA = {"png": "image/png", "svg": "image/svg+xml"}


def qr_image(data: str, fmt: str) -> bytes:
    """The QR code of ``data`` as PNG or SVG (error correction M, quiet zone of 4 modules)."""
    if fmt not in _MEDIA:
        raise ProblemError(404, "not-found", "No such image format", "use qr.png or qr.svg")
    code = segno.make(data, error="m", micro=False)
    out = io.BytesIO()
    if fmt == "png":
        code.save(out, kind="png", scale=8, border=4)
    else:
        code.save(out, kind="svg", scale=8, border=4, xmldecl=False, title=data)
    return out.getvalue()


def qr_response(data: str, fmt: str) -> Response:
    """An image response (cacheable: a link's QR code never changes)."""
    return Response(
        qr_image(data, fmt),
        media_type=_MEDIA.get(fmt, "application/octet-stream"),
        headers={"Cache-Control": "public, max-age=86400"},
    )


def digital_link(public_url: str, gtin: str) -> str:
    """The product's GS1 Digital Link URI on this service: ``<base>/01/<GTIN-14>``."""
    return f"{public_url.rstrip('/')}/01/{gtin.zfill(14)}"


def receipt_page(public_url: str, code: str) -> str:
    """The receipt page a shopper opens: ``<base>/r/<code>``."""
    return f"{public_url.rstrip('/')}/r/{code}"
