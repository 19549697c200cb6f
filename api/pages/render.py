"""Rendering the pages: one Jinja2 environment, per-request language, formatting helpers."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Any

from babel.dates import format_datetime
from babel.numbers import format_currency, format_decimal, format_percent, get_currency_precision
from fastapi import Request
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.responses import HTMLResponse

from api.config import Settings
from api.pages import i18n

#: No inline script or style anywhere: data reaches scripts through JSON <script> blocks.
#: ``connect-src *``: the Verify button talks to whichever chain RPC the shopper chooses.
#: What the pages show for a missing value (an en dash).
NONE = "\u2013"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src *; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


@cache
def environment() -> Environment:
    """The templates under ``api/pages/templates``, HTML-escaped."""
    env = Environment(
        loader=PackageLoader("api.pages", "templates"),
        autoescape=select_autoescape(("html",)),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["linkable"] = linkable
    env.tests["bytes_value"] = lambda value: isinstance(value, bytes)
    return env


def linkable(uri: str) -> bool:
    """True for a URI worth a link (http, https, ipfs); anything else is shown as text."""
    return uri.lower().startswith(("https://", "http://", "ipfs://"))


@dataclass(frozen=True)
class Formatter:
    """Language-aware formatting of the values the pages show."""

    lang: str
    settings: Settings

    @property
    def locale(self) -> str:
        """The Babel locale of the page language."""
        return i18n.LOCALES[self.lang]

    def t(self, key: str) -> str:
        """A message in the page language."""
        return i18n.message(self.lang, key)

    def money(self, minor_units: int, currency: str) -> str:
        """Minor units of ``currency`` as the language writes an amount (¥128.00, CN¥128.00)."""
        precision = get_currency_precision(currency)
        amount = Decimal(minor_units).scaleb(-precision)
        return str(format_currency(amount, currency, locale=self.locale))

    def number(self, value: int) -> str:
        """An integer with the language's grouping."""
        return str(format_decimal(value, locale=self.locale))

    def percent(self, value: float | None) -> str:
        """A share as a percentage (one decimal); an en dash for none."""
        if value is None:
            return NONE
        return str(format_percent(value, format="#,##0.#%", locale=self.locale))

    def bps(self, basis_points: int) -> str:
        """Basis points as a percentage."""
        return self.percent(basis_points / 10_000)

    def time(self, unix: float | None) -> str:
        """A Unix time in UTC, medium format of the language."""
        if unix is None:
            return NONE
        moment = dt.datetime.fromtimestamp(unix, tz=dt.UTC)
        return str(format_datetime(moment, "medium", tzinfo=dt.UTC, locale=self.locale)) + " UTC"

    def tx_url(self, tx_hash: str) -> str:
        """Where a transaction link goes: the configured explorer, or this site's own view."""
        template = self.settings.explorer_tx_url
        if template:
            return template.replace("{tx}", tx_hash)
        return f"/tx/{tx_hash}"


def short(value: str | None, keep: int = 6) -> str:
    """``0x1234…abcd`` for a long hex string."""
    if not value:
        return NONE
    if len(value) <= 2 + 2 * keep:
        return value
    return f"{value[: 2 + keep]}…{value[-keep:]}"


def render(
    request: Request,
    settings: Settings,
    template: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Render ``template`` in the request's language, with the pages' common headers."""
    query_lang = request.query_params.get("lang")
    lang = i18n.choose(
        query_lang, request.cookies.get(i18n.COOKIE), request.headers.get("accept-language")
    )
    fmt = Formatter(lang, settings)
    other = "en" if lang == "zh-CN" else "zh-CN"
    switch = request.url.include_query_params(lang=other)
    html = (
        environment()
        .get_template(template)
        .render(
            lang=lang,
            t=fmt.t,
            fmt=fmt,
            short=short,
            switch_url=f"{switch.path}?{switch.query}",
            **context,
        )
    )
    response = HTMLResponse(html, status_code=status_code, headers=headers)
    response.headers["Content-Language"] = lang
    response.headers["Vary"] = "Accept-Language, Cookie"
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers.setdefault("Cache-Control", "no-cache")
    if query_lang and i18n.normalise(query_lang) is not None:
        response.set_cookie(i18n.COOKIE, lang, max_age=365 * 86_400, samesite="lax")
    return response


def not_found(request: Request, settings: Settings, message_key: str) -> HTMLResponse:
    """The 404 page, in the request's language."""
    return render(request, settings, "error.html", {"message_key": message_key}, status_code=404)
