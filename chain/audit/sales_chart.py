"""The sales report as a chart: one horizontal bar per group, largest first, the net units in
a solid colour and the refunded units after them in a pale hatch (so the whole bar is what was
sold), each bar labelled with its net units and net amounts.

Drawn with matplotlib's object API on the Agg canvas (no pyplot state, no display). Product
names may be Chinese: a CJK font is added as a fallback when one is installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.text import Text

    from chain.audit.sales_report import SalesReport, SalesRow

#: At most this many bars; the rest are summed into one "others" bar.
MAX_BARS: Final = 25
_LATIN: Final = "DejaVu Sans"
_NET_COLOUR: Final = "#1f7a5c"
_REFUND_COLOUR: Final = "#e6a19a"
_CJK_FONTS: Final = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "PingFang SC",
    "Hiragino Sans GB",
    "Microsoft YaHei",
    "SimHei",
)


def _font_family() -> list[str]:
    from matplotlib import font_manager

    installed = {font.name for font in font_manager.fontManager.ttflist}
    return [_LATIN, *(name for name in _CJK_FONTS if name in installed)]


def money(amounts: dict[str, int]) -> str:
    """Net amounts in minor units as ``CN¥1,280.00 + $3.50`` (ISO 4217 precision)."""
    from babel.numbers import format_currency, get_currency_precision

    parts = []
    for code, minor in sorted(amounts.items()):
        try:
            major = minor / 10 ** get_currency_precision(code)
            parts.append(format_currency(major, code, locale="en"))
        except (ValueError, LookupError):  # not an ISO 4217 code babel knows
            parts.append(f"{minor} {code} (minor units)")
    return " + ".join(parts) or "-"


def _shorten(text: str, width: int = 42) -> str:
    if text.startswith("0x") and len(text) > 14:  # an id or address: keep both ends
        return f"{text[:6]}…{text[-4:]}"
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def bar_label(label: str) -> str:
    """A group's label on at most two short lines: its name, then what identifies it (the
    GTIN, or the address or id shortened to its ends, that the report puts in parentheses)."""
    name, sep, detail = label.rpartition(" (")
    if not sep or not name:
        return _shorten(label)
    return f"{_shorten(name)}\n({_shorten(detail.removesuffix(')'))})"


def _bars(report: SalesReport) -> list[SalesRow]:
    from chain.audit.sales_report import SalesRow

    rows = report.rows
    if len(rows) <= MAX_BARS:
        return rows
    shown, rest = rows[: MAX_BARS - 1], rows[MAX_BARS - 1 :]
    others = SalesRow("", f"{len(rest)} others")
    for row in rest:
        others.units_sold += row.units_sold
        others.units_refunded += row.units_refunded
        for code, amount in row.net_amount.items():
            others.net_amount[code] = others.net_amount.get(code, 0) + amount
    return [*shown, others]


def render_sales_chart(report: SalesReport, path: Path, *, dpi: int = 150) -> None:
    """Draw ``report`` as a PNG at ``path``."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    bars = _bars(report)
    with matplotlib.rc_context({"font.family": _font_family(), "font.size": 10}):
        fig = Figure(figsize=(11, max(3.6, 1.9 + 0.62 * len(bars))), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        title = f"Verified net sales by {report.by}"
        subtitle = (
            f"chain {report.chain_id} · blocks {report.from_block:,}-{report.to_block:,} · "
            f"{report.receipts:,} receipts in {report.batches:,} verified batches"
        )
        # Bold text in DejaVu only: the CJK fallback fonts have no bold face.
        fig.suptitle(title, fontsize=15, fontweight="bold", x=0.01, ha="left", family=_LATIN)
        ax.set_title(subtitle, fontsize=9.5, color="#555555", loc="left")
        if not report.complete:
            fig.text(0.99, 0.99, f"INCOMPLETE: {len(report.skipped)} batch(es) not verified",
                     ha="right", va="top", color="#b3261e", fontweight="bold",
                     family=_LATIN)  # fmt: skip
        if not bars:
            ax.text(0.5, 0.5, "No verified sales in this range", ha="center", va="center",
                    fontsize=13, color="#555555", transform=ax.transAxes)  # fmt: skip
            ax.set_axis_off()
        else:
            notes = _draw_bars(ax, bars)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            _fit_notes(ax, notes, max(row.units_sold for row in bars) or 1)
        fig.savefig(path, format="png", dpi=dpi, facecolor="white")


def _fit_notes(ax: Axes, notes: list[Text], widest: int) -> None:
    """Set the x range just wide enough for the longest bar and the note after each bar."""
    canvas = ax.figure.canvas
    canvas.draw()  # lays the figure out, so that text extents are known
    renderer = canvas.get_renderer()  # type: ignore[attr-defined]
    plot = ax.get_window_extent(renderer)
    limit = float(widest)
    for note in notes:
        right = note.get_window_extent(renderer).width + 6  # px: a little air after the text
        if right >= plot.width * 0.9:  # a note as wide as the plot: let it run over instead
            continue
        # The note starts at x data units; it ends inside the plot when x/limit of the plot
        # width plus its own width fits: limit >= x * width / (width - right).
        x = float(note.get_position()[0])
        limit = max(limit, x * plot.width / (plot.width - right))
    ax.set_xlim(0, limit)


def _draw_bars(ax: Axes, bars: list[SalesRow]) -> list[Text]:
    labels = [bar_label(row.label) for row in bars]
    positions = list(range(len(bars)))
    net = [max(row.net_units, 0) for row in bars]
    refunded = [row.units_refunded for row in bars]
    ax.barh(positions, net, color=_NET_COLOUR, label="net units (sold less refunded)")
    ax.barh(positions, refunded, left=net, color=_REFUND_COLOUR, hatch="//",
            edgecolor="#c0524a", linewidth=0, label="refunded units")  # fmt: skip
    widest = max((row.units_sold for row in bars), default=0) or 1
    notes = []
    for y, row in zip(positions, bars, strict=True):
        note = f"{row.net_units:,} net"
        if row.units_refunded:
            note += f" ({row.units_sold:,} sold, {row.units_refunded:,} refunded)"
        note += f"\n{money(row.net_amount)}"
        notes.append(
            ax.text(max(row.units_sold, 0) + widest * 0.01, y, note, va="center", fontsize=9)
        )
    ax.set_yticks(positions, labels)
    ax.invert_yaxis()
    ax.set_xlabel("units")
    ax.grid(axis="x", color="#dddddd", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.figure.legend(loc="outside lower left", ncols=2, frameon=False, fontsize=9)
    return notes
