"""`aftersales policy`: try a policy change on the shop's own history before making it."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer

from config.settings import Settings
from domain.policy import PolicyError, load_policy
from domain.simulation import (
    DEFAULT_MINUTES_PER_REVIEW,
    DEFAULT_SINCE,
    MAX_FLIPS_LISTED,
    MAX_MINUTES_PER_REVIEW,
    Comparison,
    Figures,
    PeriodError,
    SimulationReport,
    period,
)
from store.db import make_engine
from store.simulation import simulate_period

policy_app = typer.Typer(help="The shop's policy: try a candidate on the shop's own history.")

# Flips the terminal lists with their rules (all of them are counted; --json lists as many).
FLIPS_SHOWN = 10


@policy_app.command("simulate")
def simulate(
    candidate: Annotated[Path, typer.Argument(help="The candidate policy file (TOML)")],
    since: Annotated[
        str, typer.Option(help="The period: 90d (days before --until) or an ISO date")
    ] = DEFAULT_SINCE,
    until: Annotated[
        str | None, typer.Option(help="The period's end: an ISO date (taken in) [now]")
    ] = None,
    minutes_per_review: Annotated[
        int, typer.Option(min=1, max=MAX_MINUTES_PER_REVIEW, help="An agent's minutes per review")
    ] = DEFAULT_MINUTES_PER_REVIEW,
    flips: Annotated[
        int, typer.Option(min=0, max=MAX_FLIPS_LISTED, help="Flipped cases to list, newest first")
    ] = FLIPS_SHOWN,
    json: Annotated[
        bool, typer.Option("--json", help="The report as JSON (as the API answers)")
    ] = False,
) -> None:
    """Decide every case of the period again under the candidate and show what would change.

    Read-only: the configured database's cases are read, never changed, and no running case
    hears of it.
    """
    try:
        policy = load_policy(candidate)
    except PolicyError as err:
        # A usage error, as a bad option: exit code 2, the key at fault named.
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from err
    try:
        start, end = period(since, until, now=datetime.now(UTC))
    except PeriodError as err:
        raise typer.BadParameter(err.message, param_hint=f"--{err.field}") from err
    engine = make_engine(Settings().database_url, pool_size=1)
    try:
        with engine.connect() as conn:
            report = simulate_period(
                conn,
                policy,
                start=start,
                end=end,
                minutes_per_review=minutes_per_review,
                flips_listed=flips,
            )
    finally:
        engine.dispose()
    if json:
        typer.echo(report.model_dump_json(indent=2))
    else:
        typer.echo(render(report, source=str(candidate)), nl=False)


def _count(value: int, *, signed: bool = False) -> str:
    return f"{value:+,}" if signed and value else f"{value:,}"


def _money(amounts: dict[str, Decimal], *, signed: bool = False) -> str:
    if not amounts:
        return "0"
    return "; ".join(
        f"{currency} {amount:+,.2f}" if signed and amount else f"{currency} {amount:,.2f}"
        for currency, amount in amounts.items()
    )


def _rate(value: float, *, signed: bool = False) -> str:
    if signed:
        return f"{value * 100:+.1f} pt" if value else "0.0 pt"
    return f"{value * 100:.1f}%"


def _hours(value: float, *, signed: bool = False) -> str:
    return f"{value:+,.2f}" if signed and value else f"{value:,.2f}"


def _table(rows: list[list[str]]) -> str:
    """Rows of cells as a text table: the first column left-aligned, the others right."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


_LINES: tuple[tuple[str, str], ...] = (
    ("Cases", "cases"),
    ("Eligible", "eligible"),
    ("Rejected", "rejected"),
    ("Auto-approved", "auto_approved"),
    ("Auto-approval rate", "auto_approval_rate"),
    ("Manual reviews", "manual_review"),
    ("Agent hours", "review_hours"),
    ("Returnless", "returnless"),
    ("Fast refunds", "fast_refund"),
    ("High risk", "high_risk"),
    ("Refunds", "refunds"),
    ("Store credit", "store_credit"),
    ("Fees", "fees"),
)


def _cell(figures: Figures, name: str, *, signed: bool = False) -> str:
    value = getattr(figures, name)
    if name == "auto_approval_rate":
        return _rate(value, signed=signed)
    if name == "review_hours":
        return _hours(value, signed=signed)
    if isinstance(value, dict):
        return _money(value, signed=signed)
    return _count(value, signed=signed)


def _overall(comparison: Comparison) -> str:
    rows = [["", "happened", "candidate", "change"]]
    for label, name in _LINES:
        rows.append(
            [
                label,
                _cell(comparison.happened, name),
                _cell(comparison.candidate, name),
                _cell(comparison.change, name, signed=True),
            ]
        )
    return _table(rows)


def _groups(title: str, comparisons: list[Comparison]) -> str:
    rows = [
        [title, "cases", "auto", "manual", "rejected", "refunds change", "fees change", "flips"]
    ]
    for c in comparisons:
        h, k = c.happened, c.candidate
        rows.append(
            [
                c.key or "—",
                _count(h.cases),
                f"{h.auto_approved} → {k.auto_approved}",
                f"{h.manual_review} → {k.manual_review}",
                f"{h.rejected} → {k.rejected}",
                _money(c.change.refunds, signed=True),
                _money(c.change.fees, signed=True),
                _count(c.flips),
            ]
        )
    return _table(rows)


def render(report: SimulationReport, *, source: str) -> str:
    """The report as the terminal shows it: the overall figures, the groups, the flips."""
    skipped = ", ".join(f"{why} {n}" for why, n in report.skipped.items())
    out = [
        f"Policy simulation of {source}: {report.cases:,} cases opened "
        f"{report.start:%Y-%m-%d %H:%M} to {report.end:%Y-%m-%d %H:%M} UTC"
        + (f" (left out: {skipped})" if skipped else ""),
        f"{report.minutes_per_review} minutes per manual review.",
        "",
        _overall(report.overall),
        _groups("By type", report.by_type),
        _groups("By reason", report.by_reason),
        _groups("By category", report.by_category),
        f"Cases whose decision flips: {report.flips:,}",
    ]
    if report.flip_counts:
        out.append(_table([[f"  {change}", _count(n)] for change, n in report.flip_counts.items()]))
    if len(report.flips_listed) < report.flips:
        out.append(f"The {len(report.flips_listed)} newest:")
    for flip in report.flips_listed:
        categories = ", ".join(flip.categories) or "—"
        out.append(
            f"{flip.case_id}  {flip.type.value}  {flip.reason or '—'}  {categories}  "
            f"opened {flip.opened_at:%Y-%m-%d %H:%M}"
        )
        out.append("  " + "; ".join(f"{c.field}: {c.before} -> {c.after}" for c in flip.changes))
        for label, rules in (("before", flip.rules_before), ("after", flip.rules_after)):
            for n, rule in enumerate(rules):
                out.append(f"  {label if n == 0 else '':6}  {rule.id}: {rule.message}")
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"
