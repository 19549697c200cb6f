"""QR codes decode (with zxing-cpp, an independent decoder) to the links they promise."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import zxingcpp
from fastapi.testclient import TestClient
from PIL import Image

from tests.api.conftest import Keys, World
from tests.api.test_orders import open_room_and_session, order


def _decode_png(data: bytes) -> list[str]:
    return [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(data)))]


def test_product_qr_is_its_gs1_digital_link(client: TestClient, world: World) -> None:
    png = client.get(f"/v1/products/{world.gtin}/qr.png")
    assert png.status_code == 200
    assert png.headers["content-type"] == "image/png"
    assert _decode_png(png.content) == [f"http://testserver/01/{world.gtin}"]
    # A GTIN-13 spelling finds the same product and the same GTIN-14 link.
    short = client.get(f"/v1/products/{world.gtin.lstrip('0')}/qr.png")
    assert _decode_png(short.content) == [f"http://testserver/01/{world.gtin}"]
    svg = client.get(f"/v1/products/{world.gtin}/qr.svg")
    assert svg.headers["content-type"].startswith("image/svg+xml")
    root = ET.fromstring(svg.content)  # noqa: S314 - our own server's output
    assert root.tag.endswith("svg")
    assert f"http://testserver/01/{world.gtin}" in svg.text  # its <title>


def test_receipt_qr_opens_the_receipt_page(client: TestClient, keys: Keys, world: World) -> None:
    open_room_and_session(client, keys, world)
    accepted = client.post(
        "/v1/orders", json=order(world), headers={**keys.ingest, "Idempotency-Key": "qr"}
    ).json()
    code = accepted["receipt_code"]
    png = client.get(f"/v1/receipts/{code}/qr.png")
    assert png.status_code == 200
    assert _decode_png(png.content) == [f"http://testserver/r/{code}"]


def test_unknown_things_and_formats_are_404_problems(client: TestClient, world: World) -> None:
    for path in (
        "/v1/products/00000000000017/qr.png",
        f"/v1/products/{world.gtin}/qr.gif",
        "/v1/receipts/lp1nosuchcode/qr.svg",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/problem+json"
