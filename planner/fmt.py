"""How the planner writes amounts: token counts, US dollars and shares in formulas, reasons and
reports, and the labels and ranges plan.md's templates show (their Jinja2 filters). A new format
goes here, so that one amount reads the same wherever it appears; the formulas that assemble
these amounts into sentences are in planner/formulas.py."""

from __future__ import annotations

from collections.abc import Sequence


def tokens_text(count: float) -> str:
    """400000000 -> '400M'; keeps three significant figures."""
    for size, suffix in ((10**12, "T"), (10**9, "B"), (10**6, "M"), (10**3, "k")):
        if abs(count) >= size:
            return f"{count / size:.3g}{suffix}"
    return f"{count:.3g}"


def usd(amount: float) -> str:
    """1234.564 -> '1,234.56 USD': an amount to the cent."""
    return f"{usd_cents(amount)} USD"


def usd_cents(amount: float) -> str:
    """1234.564 -> '1,234.56': an amount to the cent without its unit (a table's column says
    it, or a sum of such amounts ends with the unit once)."""
    return f"{amount:,.2f}"


def usd_cents_signed(amount: float) -> str:
    """A change to the cent without its unit: 12.5 -> '+12.50', -3 -> '-3.00'."""
    return f"{amount:+,.2f}"


def usd_signed(amount: float) -> str:
    """A change: 12.5 -> '+12.50 USD', -3 -> '-3.00 USD'."""
    return f"{usd_cents_signed(amount)} USD"


def usd_dollars(amount: float) -> str:
    """285000 -> '285,000': whole dollars without the unit (a threshold the sentence names)."""
    return f"{amount:,.0f}"


def usd_whole(amount: float) -> str:
    """285000 -> '285,000 USD': a figure given in whole dollars (a salary, a server's price, a
    month's API spend in a table)."""
    return f"{usd_dollars(amount)} USD"


def usd_per_hour(rate: float) -> str:
    """98.32 -> '98.32 USD/h', 63.296 -> '63.296 USD/h': an hourly price as the catalog has it
    (up to ten significant figures), so a formula that multiplies it by nodes and hours gives
    the total it prints (an outside review: '2 x 63.3 USD/h x 730 h = 92,412.16' from 63.296)."""
    return f"{rate:,.10g} USD/h"


def usd_per_mtok(price: float) -> str:
    """15 -> '15 USD/M': a price per million tokens, four significant figures."""
    return f"{price:,.4g} USD/M"


def tokens_count(count: float) -> str:
    """128000 -> '128,000': a token count in full (a context window, a request's tokens)."""
    return f"{count:,.0f}"


def tokens_per_second(rate: float, decimals: int = 1) -> str:
    """1234.56 -> '1,234.6': a token rate, to a tenth unless said (the unit, tok/s, is said
    beside it)."""
    return f"{rate:,.{decimals}f}"


def percent(share: float, decimals: int = 1) -> str:
    """0.1234 -> '12.3%' (decimals after the point: 0.5 with 0 -> '50%')."""
    return f"{share:.{decimals}%}"


def percent_points(points: float, beyond: float | None = None, signed: bool = False) -> str:
    """12.34 (a percent already) -> '12.3 %', as the budget gate states a rise ('+12.3 %'
    signed). Against a threshold (`beyond`), with as many more decimals as put the figure shown
    on the threshold's side the points are on: a rise of 5.03 % failing a 5 % gate reads
    '5.03 %', never '5.0 %', which would not be above it."""
    sign = "+" if signed else ""
    decimals = 1
    while beyond is not None and decimals < 15:
        shown = float(f"{points:.{decimals}f}")
        if (shown > beyond) == (points > beyond):
            break
        decimals += 1
    return f"{points:{sign}.{decimals}f} %"


def billions_label(tokens: float, figures: int = 3) -> str:
    """A chart's axis label: tokens in billions, `figures` significant figures below 10**figures
    / 10 and whole billions with thousands separators above (never the exponent form %g gives
    at 1,000), quoted for mermaid, whose category list a comma would otherwise split."""
    value = tokens / 1e9
    text = f"{value:,.0f}" if value >= 10 ** (figures - 1) else f"{value:.{figures}g}"
    return f'"{text}"'


def chart_labels(tokens: Sequence[float], current: float | None = None) -> str:
    """A mermaid category list for these volumes: billions_label's, with as many significant
    figures as keep neighbours apart (a category repeated would merge into one), a "+" on a
    point still the same as the one before to six figures (just past a step or a crossing), and
    "(now)" on the workload's own volume."""
    # Each volume's label at three to six figures, made once.
    at = {
        figures: [billions_label(v, figures).strip('"') for v in tokens] for figures in range(3, 7)
    }
    labels: list[str] = []
    for index, value in enumerate(tokens):
        near = [j for j in (index - 1, index + 1) if 0 <= j < len(tokens) and tokens[j] != value]
        text = next(
            (
                at[figures][index]
                for figures in range(3, 7)
                if all(at[figures][j] != at[figures][index] for j in near)
            ),
            at[6][index],
        )
        if current is not None and round(value) == round(current):
            text += " (now)"
        while f'"{text}"' in labels:  # never one category twice
            text += "+"
        labels.append(f'"{text}"')
    return "[" + ", ".join(labels) + "]"


def usd_range(low: float, high: float) -> str:
    """A cost's range, or nothing where its ends are the same cent (no noise like
    "138,988.49 USD to 138,988.49 USD")."""
    if round(low * 100) == round(high * 100):
        return ""
    return f"{usd(low)} to {usd(high)}"
