"""How the planner says amounts in its formulas and reasons: token counts and US dollars."""

from __future__ import annotations


def tokens_text(count: float) -> str:
    """400000000 -> '400M'; keeps three significant figures."""
    for size, suffix in ((10**12, "T"), (10**9, "B"), (10**6, "M"), (10**3, "k")):
        if abs(count) >= size:
            return f"{count / size:.3g}{suffix}"
    return f"{count:.3g}"


def usd(amount: float) -> str:
    return f"{amount:,.2f} USD"
