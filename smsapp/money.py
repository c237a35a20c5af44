"""Money (pack §3): stored as integer units, ten-thousandths of a cent (1 AUD = 1,000,000
units, 1 cent = 10,000 units); the API speaks cents, a JSON number with up to four decimals.

Conversions are exact: through `Decimal`, never float arithmetic. A JSON float (5.5) is read
through `Decimal(str(x))`, the shortest text that round-trips to that float, so it is the
number the client wrote (for up to 15 significant digits, which every amount here fits).
"""

from __future__ import annotations

from decimal import Context, Decimal, Inexact, InvalidOperation, localcontext

UNITS_PER_CENT = 10_000
UNITS_PER_DOLLAR = 1_000_000
MAX_DECIMALS = 4  # of a cent: one unit
MAX_UNITS = 2**63 - 1  # a BIGINT column

# Wide enough for any amount a BIGINT holds; an inexact step is an error, never a rounding.
_EXACT = Context(prec=60, traps=[Inexact, InvalidOperation])


def _as_decimal(value: object) -> Decimal:
    if isinstance(value, bool):  # a bool is an int in Python, never an amount
        raise ValueError(f"{value!r} is not an amount of cents")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(str(value))  # repr: 5.5 -> "5.5", not 5.5's binary expansion
    if isinstance(value, str):
        text = value.strip()
        try:
            return Decimal(text)
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a number of cents") from None
    raise ValueError(f"{value!r} is not a number of cents")


def cents_to_units(value: object) -> int:
    """Cents (int, float, str or Decimal, as JSON or a form gives them) as integer units.

    Exact or refused: more than four decimals, NaN, infinities, or an amount a BIGINT cannot
    hold raise ValueError. The sign is kept; callers decide whether negatives make sense."""
    amount = _as_decimal(value)
    if not amount.is_finite():
        raise ValueError(f"{value!r} is not a finite number of cents")
    with localcontext(_EXACT):
        try:
            units = amount.scaleb(MAX_DECIMALS)
            whole = units.to_integral_value()
        except (Inexact, InvalidOperation):
            raise ValueError(f"{value!r} cents is too large") from None
    if units != whole:
        raise ValueError(
            f"{value!r} cents has more than {MAX_DECIMALS} decimals "
            f"(the smallest amount is 0.0001 cents)"
        )
    result = int(whole)
    if abs(result) > MAX_UNITS:
        raise ValueError(f"{value!r} cents is too large")
    return result


def units_to_cents(units: int) -> int | float:
    """Units as cents for JSON: an int when whole (50000 -> 5), else the float whose shortest
    text is the exact decimal (165000 -> 16.5, 1 -> 0.0001)."""
    if isinstance(units, bool) or not isinstance(units, int):
        raise TypeError(f"units must be an int, not {type(units).__name__}")
    if units % UNITS_PER_CENT == 0:
        return units // UNITS_PER_CENT
    return float(Decimal(units).scaleb(-MAX_DECIMALS))


def cents_text(units: int) -> str:
    """Units as cents in plain text for forms and pages: 55000 -> "5.5", 50000 -> "5"."""
    text = format(Decimal(units).scaleb(-MAX_DECIMALS), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def dollars_text(units: int) -> str:
    """Units as Australian dollars for people: 500_000_000 -> "$500.00", 55000 -> "$0.055",
    1_234_567_890 -> "$1,234.56789" (at least two decimals, never rounded)."""
    sign = "-" if units < 0 else ""
    dollars = Decimal(abs(units)).scaleb(-6)
    whole, _, fraction = format(dollars, "f").partition(".")
    fraction = fraction.rstrip("0").ljust(2, "0")
    return f"{sign}${int(whole):,}.{fraction}"
