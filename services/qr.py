"""Station QR codes: the URL a phone camera opens, rendered as PNG or SVG."""

from __future__ import annotations

import io

import qrcode
import qrcode.image.svg
from qrcode.constants import ERROR_CORRECT_M

from services.settings import Settings
from services.tokens import sign_station


def station_url(settings: Settings, station_id: str) -> str:
    return f"{settings.public_url}/s/{sign_station(settings, station_id)}"


def render(data: str, fmt: str) -> bytes:
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=10, border=4)
    qr.add_data(data)
    qr.make(fit=True)
    buf = io.BytesIO()
    if fmt == "svg":
        qr.make_image(image_factory=qrcode.image.svg.SvgPathImage).save(buf)
    else:
        qr.make_image().save(buf, format="PNG")
    return buf.getvalue()
