"""Turn a message name, a locale and a case into the subject, text and HTML people read."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.numbers import format_currency, get_currency_precision
from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    FileSystemLoader,
    StrictUndefined,
    Template,
    pass_context,
)
from jinja2.exceptions import TemplatesNotFound, UndefinedError
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from domain.money import round_money
from notifications.codes import InlineImage, InlineImages

BUILTIN_TEMPLATES = Path(__file__).parent / "templates"
FALLBACK_LOCALE = "en"
BLOCKS = ("subject", "text", "html")

# Customer-facing messages of a return case, in the order a case meets them. Exchange and
# refund-only cases share these (the templates word them by `case.type`) and add their own
# below; other case types add theirs here (and to REQUIRED_EXTRA) when their templates land.
RETURN_MESSAGES: tuple[str, ...] = (
    "case_received",
    "case_approved",
    "case_rejected",
    "info_needed",
    "info_reminder",
    "shipment_reminder",
    "pickup_rebooked",
    "picked_up",
    "item_received",
    "inspection_passed",
    "inspection_failed",
    "refund_sent",
    # Store credit instead of a refund, or a complaint's coupon (every case type words it).
    "store_credit_issued",
    "survey",
    "case_expired",
    "case_cancelled",
    # Every case type may send it, after a message that awaits the customer's answer.
    "sms_nudge",
)
# Messages only an exchange sends (DESIGN 3.3).
EXCHANGE_MESSAGES: tuple[str, ...] = (
    "difference_due",
    "out_of_stock_offer",
    "waiting_for_stock",
    "variant_switched",
    "replacement_shipped",
    "original_not_returned",
)
# Messages only a refund-only case sends (DESIGN 3.4).
REFUND_MESSAGES: tuple[str, ...] = (
    "fulfilment_cancelled",
    "interception_requested",
    "interception_failed",
    "refund_offer",
    "offer_declined",
)
# Messages only a repair sends (DESIGN 3.5); it also sends replacement_shipped for the item going
# back (repaired, unrepaired, or a replacement), worded by `case.repair`.
REPAIR_MESSAGES: tuple[str, ...] = (
    "diagnosis_delayed",
    "repair_quote",
    "repair_declined",
    "repair_started",
    "repair_done",
    "unrepairable",
)
# Messages only a complaint sends (DESIGN 3.6); it also sends refund_sent, survey and
# case_cancelled (and case_received reads right for one), worded by `case.type`.
COMPLAINT_MESSAGES: tuple[str, ...] = (
    "complaint_acknowledged",
    "complaint_response",
    "resolution_proposed",
    "resolution_done",
    "satisfaction_check",
)
OPS_MESSAGES: tuple[str, ...] = ("ops_escalation",)
MESSAGES: tuple[str, ...] = (
    RETURN_MESSAGES
    + EXCHANGE_MESSAGES
    + REFUND_MESSAGES
    + REPAIR_MESSAGES
    + COMPLAINT_MESSAGES
    + OPS_MESSAGES
)

# The `extra` keys each message needs. Every key listed must be passed (None is a valid
# value where the message says so); a message not listed needs none.
REQUIRED_EXTRA: dict[str, tuple[str, ...]] = {
    # return_address: str (lines) or address mapping; shown when the customer ships it.
    # tracking_number: the booked pickup's, shown when the seller pays; None otherwise.
    "case_approved": ("return_address", "tracking_number"),
    # reason: the agent's words, or None when the policy rejected the case at open.
    "case_rejected": ("reason",),
    "info_needed": ("question",),
    "info_reminder": ("question",),
    # awaiting: the message still waiting for the answer (info_needed, repair_quote, ...); the
    # subject is the whole SMS, the status URL follows it.
    "sms_nudge": ("awaiting",),
    "shipment_reminder": ("return_address",),
    # tracking_number of the new pickup booking.
    "pickup_rebooked": ("tracking_number",),
    # notes: the inspection's findings; refund_amount: {"amount", "currency"} or None.
    "inspection_failed": ("notes", "refund_amount"),
    # timer: the wait that ran out (customer_info or customer_shipment).
    "case_expired": ("timer",),
    # timer: the breached deadline's name.
    "ops_escalation": ("timer",),
    # Amounts below are {"amount", "currency"} mappings, like inspection_failed's refund_amount.
    # amount: the price difference a dearer replacement costs (due by the offer_response deadline).
    "difference_due": ("amount",),
    # tracking_number of the replacement parcel.
    "replacement_shipped": ("tracking_number",),
    # amount: the refund offered instead of an out-of-stock replacement.
    "out_of_stock_offer": ("amount",),
    # amount: the difference a dearer variant costs, refund_amount: what a cheaper one pays
    # back once shipped; each None when there is none.
    "variant_switched": ("amount", "refund_amount"),
    # amount: what the shop charges for an advanced exchange's original that never came back.
    "original_not_returned": ("amount",),
    # amount: the refund offered for a delivered item the customer keeps;
    # note: the agent's words to the customer, "" for none.
    # credit: the same offer as store credit, bonus included ({"amount", "currency"}).
    "refund_offer": ("amount", "note", "credit"),
    # resolution: "store_credit" (instead of a refund) or "coupon" (a complaint's); the amount,
    # bonus and code are the case's `store_credit`.
    "store_credit_issued": ("resolution",),
    # amount: the repair's cost (due by the quote_response deadline); parts: the parts the
    # diagnosis names (list of str, may be empty); notes: the diagnosis's findings, "" for none.
    "repair_quote": ("amount", "parts", "notes"),
    # notes: why the item can't be repaired, "" for none; lost: True when the carrier lost the
    # parcel on its way in (then there is no diagnosis).
    "unrepairable": ("notes", "lost"),
    # response: the agent's words to the customer (a complaint's first or later answer).
    "complaint_response": ("response",),
    # resolution: apology | coupon | partial_refund | refund | return | exchange | repair;
    # amount: the coupon's or refund's {"amount", "currency"}, None for the rest;
    # note: the agent's words with the proposal, "" for none.
    "resolution_proposed": ("resolution", "amount", "note"),
    # resolution and amount as above; child_case_id: the return, exchange or repair case that
    # carried it out, None for the rest.
    "resolution_done": ("resolution", "amount", "child_case_id"),
}

_LOCALE_PATTERN = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_TWO_PLUS_BLANK_LINES = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    text: str
    html: str
    # Images the HTML shows through `cid:` URLs (a drop-off's QR code), attached to the mail.
    images: tuple[InlineImage, ...] = ()


# Our locales as babel (CLDR) names them; anything else formats like en.
BABEL_LOCALES: dict[str, str] = {"en": "en_US", "zh-TW": "zh_Hant_TW", "zh-CN": "zh_Hans_CN"}


def money(amount: Any, currency: str, locale: str = FALLBACK_LOCALE) -> str:
    """Format an amount for a locale: "TWD 990.00" (en), "NT$990" (zh-TW), "¥990.00" (zh-CN)."""
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        raise ValueError(f"{amount!r} is not an amount") from None
    if not value.is_finite():
        raise ValueError(f"{amount!r} is not an amount")
    # Rounded by our rule (half up) before babel, whose own rounding is half-even.
    value = round_money(value, get_currency_precision(currency))
    babel_locale = BABEL_LOCALES.get(str(locale), BABEL_LOCALES[FALLBACK_LOCALE])
    if babel_locale == BABEL_LOCALES[FALLBACK_LOCALE]:
        # English mail names the currency by its code: a bare "$" or "NT$" is ambiguous to
        # an English reader in another country.
        return format_currency(value, currency, format="¤¤ #,##0.00", locale=babel_locale)
    if babel_locale == "zh_Hant_TW" and currency == "TWD":
        # Taiwan writes "NT$" and prices whole dollars (CLDR cash digits 0); babel's
        # zh_Hant_TW symbol is a bare "$" with ISO's two decimals.
        whole = value == value.to_integral_value()
        pattern = "NT$#,##0" if whole else "NT$#,##0.00"
        return format_currency(
            value, currency, format=pattern, locale=babel_locale, currency_digits=False
        )
    return format_currency(value, currency, locale=babel_locale)


@pass_context
def _money_filter(context: Context, amount: Any, currency: str) -> str:
    """The `money` filter: formats for the message's locale (render_message passes `locale`)."""
    locale = context.get("locale")
    if not isinstance(locale, str):
        # Imported macros (_shared.j2) don't see the render context: their template's folder is
        # the locale.
        locale = (context.name or "").split("/", 1)[0]
    return money(amount, currency, locale)


def when(value: str | datetime, tz: str) -> str:
    """Format an ISO datetime in a timezone, e.g. "2026-11-29 10:00 (Asia/Taipei)"."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        # The API stores offsets; a naive time can only have come from UTC code paths.
        moment = moment.replace(tzinfo=UTC)
    return f"{moment.astimezone(ZoneInfo(tz)):%Y-%m-%d %H:%M} ({tz})"


def address_lines(value: Any) -> list[str]:
    """Split an address (multi-line string or address mapping) into display lines."""
    if value is None:
        return []
    if isinstance(value, str):
        return [line.strip() for line in value.splitlines() if line.strip()]
    city_line = " ".join(str(value[k]) for k in ("postal_code", "city") if value.get(k))
    parts = [value.get("name"), value.get("line1"), value.get("line2"), city_line]
    parts += [value.get("country"), value.get("phone")]
    return [str(part) for part in parts if part]


def _valid_timezone(name: Any) -> bool:
    if not isinstance(name, str) or not name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _loader(templates_dir: Path | None) -> BaseLoader:
    # The shop's directory comes first so it can replace any single built-in template.
    loaders = [FileSystemLoader(str(templates_dir))] if templates_dir else []
    loaders.append(FileSystemLoader(str(BUILTIN_TEMPLATES)))
    return ChoiceLoader(loaders)


def _environment(templates_dir: Path | None, *, autoescape: bool) -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        loader=_loader(templates_dir),
        autoescape=autoescape,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        # Templates change with a deploy, not while the worker runs: skip the stat per render.
        auto_reload=False,
    )
    env.filters["money"] = _money_filter
    env.filters["when"] = when
    env.filters["address_lines"] = address_lines
    return env


@lru_cache(maxsize=16)
def _environments(templates_dir: Path | None) -> tuple[SandboxedEnvironment, SandboxedEnvironment]:
    """(plain, html) environments over the same loader, built once per templates_dir."""
    # Subject and text bodies are plain text: escaping them would show "&lt;" to customers,
    # so they come from an environment without autoescape; the HTML one escapes everything.
    plain = _environment(templates_dir, autoescape=False)
    return plain, _environment(templates_dir, autoescape=True)


def _candidates(locale: str, name: str) -> list[str]:
    locales = [locale] if _LOCALE_PATTERN.match(locale) else []
    if FALLBACK_LOCALE not in locales:
        locales.append(FALLBACK_LOCALE)
    return [f"{loc}/{name}" for loc in locales]


def _render_block(template: Template, block: str, context: Mapping[str, Any]) -> str:
    try:
        render = template.blocks[block]
    except KeyError:
        raise KeyError(f"template {template.name} has no {{% block {block} %}}") from None
    with _naming(template):
        return "".join(render(template.new_context(dict(context))))


def _render_whole(template: Template, context: Mapping[str, Any]) -> str:
    with _naming(template):
        return template.render(context)


@contextmanager
def _naming(template: Template) -> Iterator[None]:
    # Jinja's "'dict object' has no attribute 'x'" names the variable but not the file.
    try:
        yield
    except UndefinedError as err:
        raise UndefinedError(f"template {template.name}: {err.message}") from None


def _select(env: SandboxedEnvironment, names: list[str], templates_dir: Path | None) -> Template:
    try:
        return env.select_template(names)
    except TemplatesNotFound:
        where = f"{templates_dir} (AFTERSALES_TEMPLATES_DIR) or " if templates_dir else ""
        raise TemplatesNotFound(
            names, f"no template {' or '.join(names)} in {where}the built-in templates"
        ) from None


def _tidy_text(text: str) -> str:
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return _TWO_PLUS_BLANK_LINES.sub("\n\n", "\n".join(lines)) + "\n"


def render_message(
    message: str,
    locale: str,
    context: Mapping[str, Any],
    *,
    templates_dir: Path | None = None,
) -> RenderedMessage:
    """Render one message for a locale (falling back to en) from the case context."""
    if message not in MESSAGES:
        raise ValueError(f"unknown message {message!r}; known: {', '.join(MESSAGES)}")
    extra = context.get("extra") or {}
    missing = [key for key in REQUIRED_EXTRA.get(message, ()) if key not in extra]
    if missing:
        # Fail before rendering: a branch the sample case didn't take would hide the gap.
        raise UndefinedError(f"message {message!r} needs extra {', '.join(missing)}")

    case = context["case"]
    images = InlineImages()
    policy_tz = context["timezone"] if _valid_timezone(context.get("timezone")) else "UTC"
    customer_tz = (case.get("customer") or {}).get("timezone")
    values: dict[str, Any] = {
        "deadline": None,
        **context,
        "extra": extra,
        "message": message,
        # Layouts greet and sign off differently for the operations team than for customers.
        "audience": "ops" if message in OPS_MESSAGES else "customer",
        # One zone for every time in the message: the customer's own when it is a real zone.
        "tz": customer_tz if _valid_timezone(customer_tz) else policy_tz,
        # `qr_image(code)` in HTML: the `cid:` URL of the code's QR image, attached to the mail.
        "qr_image": images.qr,
    }

    plain_env, html_env = _environments(templates_dir)
    plain = _select(plain_env, _candidates(locale, f"{message}.j2"), templates_dir)
    # Chrome and money follow the message's own locale so a fallback message isn't wrapped in
    # another language's layout or amounts.
    found_locale = (plain.name or "").split("/", 1)[0]
    values["locale"] = found_locale
    subject = " ".join(_render_block(plain, "subject", values).split())
    text_body = _render_block(plain, "text", values)
    html_body = _render_block(html_env.get_template(plain.name or ""), "html", values)

    text_layout = _select(plain_env, _candidates(found_locale, "_layout.text.j2"), templates_dir)
    html_layout = _select(html_env, _candidates(found_locale, "_layout.html.j2"), templates_dir)
    text = _render_whole(text_layout, {**values, "subject": subject, "body": text_body.strip()})
    html = _render_whole(html_layout, {**values, "subject": subject, "body": Markup(html_body)})
    return RenderedMessage(
        subject=subject,
        text=_tidy_text(text),
        html=html.strip() + "\n",
        images=tuple(images.images),
    )


def render_page(
    name: str,
    locale: str,
    context: Mapping[str, Any],
    *,
    templates_dir: Path | None = None,
) -> str:
    """Render a web page template (autoescaped HTML) for a locale, falling back to en."""
    _, html_env = _environments(templates_dir)
    template = html_env.select_template(_candidates(locale, name))
    # As in messages, the page's chrome and amounts follow the locale its template came from.
    found_locale = (template.name or "").split("/", 1)[0]
    return template.render({**context, "locale": found_locale})
