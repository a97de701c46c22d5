"""How the planner writes amounts: token counts and US dollars in formulas and reasons, and the
labels and ranges plan.md's templates show (their Jinja2 filters). A new format goes here, so
that one amount reads the same wherever it appears."""

from __future__ import annotations


def tokens_text(count: float) -> str:
    """400000000 -> '400M'; keeps three significant figures."""
    for size, suffix in ((10**12, "T"), (10**9, "B"), (10**6, "M"), (10**3, "k")):
        if abs(count) >= size:
            return f"{count / size:.3g}{suffix}"
    return f"{count:.3g}"


def usd(amount: float) -> str:
    return f"{amount:,.2f} USD"


def billions_label(tokens: float) -> str:
    """A chart's axis label: tokens in billions, three significant figures below 100 and whole
    billions with thousands separators above (never the exponent form %g gives at 1,000),
    quoted for mermaid, whose category list a comma would otherwise split."""
    value = tokens / 1e9
    text = f"{value:,.0f}" if value >= 100 else f"{value:.3g}"
    return f'"{text}"'


def usd_range(low: float, high: float) -> str:
    """A cost's range, or nothing where its ends are the same cent (no noise like
    "138,988.49 USD to 138,988.49 USD")."""
    if round(low * 100) == round(high * 100):
        return ""
    return f"{low:,.2f} USD to {high:,.2f} USD"
