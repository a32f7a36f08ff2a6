"""Shipping-label PDFs for the Sendcloud simulator: real PDF bytes a printer or viewer accepts."""

from __future__ import annotations

from typing import Any

from fpdf import FPDF

A6 = (105.0, 148.0)


def _latin1(text: Any) -> str:
    """Core PDF fonts are Latin-1; anything else becomes '?' rather than failing the label."""
    return str(text or "").encode("latin-1", "replace").decode("latin-1")


def _draw(pdf: FPDF, parcel: dict[str, Any], x: float, y: float) -> None:
    width, height = A6
    pdf.set_draw_color(0, 0, 0)
    pdf.rect(x + 3, y + 3, width - 6, height - 6)
    carrier = str((parcel.get("carrier") or {}).get("code") or "carrier").upper()
    pdf.set_font("Helvetica", "B", 18)
    pdf.set_xy(x + 7, y + 7)
    pdf.cell(width - 14, 9, _latin1(carrier))
    pdf.set_font("Helvetica", "", 8)
    pdf.set_xy(x + 7, y + 16)
    shipment = (parcel.get("shipment") or {}).get("name") or ""
    pdf.cell(width - 14, 5, _latin1(f"{shipment}  -  SANDBOX, NOT A REAL LABEL"))
    pdf.set_font("Helvetica", "B", 11)
    pdf.set_xy(x + 7, y + 26)
    pdf.cell(width - 14, 6, "TO:")
    pdf.set_font("Helvetica", "", 11)
    country = (parcel.get("country") or {}).get("iso_2") or ""
    lines = [
        parcel.get("name"),
        parcel.get("company_name"),
        f"{parcel.get('address') or ''} {parcel.get('address_2') or ''}".strip(),
        f"{parcel.get('postal_code') or ''} {parcel.get('city') or ''}".strip(),
        country,
    ]
    cursor = y + 33
    for line in lines:
        if line:
            pdf.set_xy(x + 7, cursor)
            pdf.cell(width - 14, 6, _latin1(line))
            cursor += 6
    pdf.set_font("Helvetica", "", 8)
    pdf.set_xy(x + 7, cursor + 4)
    pdf.cell(
        width - 14,
        5,
        _latin1(f"Order {parcel.get('order_number') or '-'}   Weight {parcel.get('weight')} kg"),
    )
    tracking = str(parcel.get("tracking_number") or "")
    if tracking:
        pdf.code39(f"*{tracking.upper()}*", x=x + 8, y=y + 100, w=0.5, h=22)
        pdf.set_font("Helvetica", "B", 10)
        pdf.set_xy(x + 7, y + 125)
        pdf.cell(width - 14, 6, _latin1(tracking), align="C")


def label_pdf(parcel: dict[str, Any], *, quadrant: int | None = None) -> bytes:
    """An A6 label, or (``quadrant`` 0-3) an A4 page with the label in that quarter."""
    if quadrant is None:
        pdf = FPDF(unit="mm", format=A6)
        pdf.set_auto_page_break(False)
        pdf.add_page()
        _draw(pdf, parcel, 0.0, 0.0)
    else:
        pdf = FPDF(unit="mm", format="A4")
        pdf.set_auto_page_break(False)
        pdf.add_page()
        x = 105.0 if quadrant in (1, 3) else 0.0
        y = 148.5 if quadrant in (2, 3) else 0.0
        _draw(pdf, parcel, x, y)
    pdf.set_title(_latin1(f"Label {parcel.get('tracking_number') or parcel.get('id')}"))
    return bytes(pdf.output())
