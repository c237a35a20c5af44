"""Money (pack §3): cents in the API, integer units (1 cent = 10,000) in the database, exact
both ways."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from smsapp.money import cents_text, cents_to_units, dollars_text, units_to_cents

# (what the client sends, units stored)
TO_UNITS: list[tuple[object, int]] = [
    (5.5, 55_000),
    ("5.5", 55_000),
    (Decimal("5.5"), 55_000),
    (5, 50_000),
    (0, 0),
    (0.0, 0),
    ("0", 0),
    (0.0001, 1),
    ("0.0001", 1),
    (0.1, 1_000),  # the float 0.1 is not 1/10, but its shortest text is "0.1"
    (0.3, 3_000),
    (1.1, 11_000),
    (2.675, 26_750),
    (16.5, 165_000),
    (7.25, 72_500),
    ("12.3456", 123_456),
    (" 9.9 ", 99_000),
    (-5.5, -55_000),
    (1e-4, 1),
    ("1e2", 1_000_000),
    (50_000, 500_000_000),  # $500 a day
    (100_000_000_000, 1_000_000_000_000_000),  # $1 billion, the largest budget the API takes
    (99_999_999_999.9999, 999_999_999_999_999),
    ("5.50000", 55_000),  # trailing zeros are not decimals that matter
]

# (units stored, cents answered, its JSON text)
TO_CENTS: list[tuple[int, int | float, str]] = [
    (165_000, 16.5, "16.5"),
    (55_000, 5.5, "5.5"),
    (50_000, 5, "5"),
    (0, 0, "0"),
    (1, 0.0001, "0.0001"),
    (10, 0.001, "0.001"),
    (123_456, 12.3456, "12.3456"),
    (1_000, 0.1, "0.1"),
    (72_500, 7.25, "7.25"),
    (500_000_000, 50_000, "50000"),
    (-55_000, -5.5, "-5.5"),
    (999_999_999_999_999, 99_999_999_999.9999, "99999999999.9999"),
]


@pytest.mark.parametrize(("cents", "units"), TO_UNITS)
def test_it_converts_cents_to_units_exactly(cents: object, units: int) -> None:
    result = cents_to_units(cents)
    assert result == units
    assert type(result) is int


@pytest.mark.parametrize(("units", "cents", "text"), TO_CENTS)
def test_it_converts_units_to_cents_exactly(units: int, cents: int | float, text: str) -> None:
    result = units_to_cents(units)
    assert result == cents
    assert type(result) is type(cents)
    assert json.dumps(result) == text
    assert cents_to_units(result) == units  # and back, through the float the API sends


@pytest.mark.parametrize(
    "bad",
    [
        5.55555,
        "5.55555",
        "0.00001",
        1e-5,
        Decimal("0.00005"),
        "abc",
        "",
        "5,5",
        float("nan"),
        float("inf"),
        "NaN",
        "-Infinity",
        True,
        None,
        [5],
        {"cents": 5},
        "1e400",
        10**30,
    ],
)
def test_it_refuses_what_is_not_an_exact_amount(bad: object) -> None:
    with pytest.raises(ValueError):
        cents_to_units(bad)


def test_it_costs_three_segments_at_five_and_a_half_cents_at_sixteen_and_a_half() -> None:
    price = cents_to_units(5.5)
    cost = 3 * price
    assert cost == 165_000
    assert units_to_cents(cost) == 16.5
    assert json.dumps({"cost": units_to_cents(cost)}) == '{"cost": 16.5}'
    # Float arithmetic would not be exact here; units are.
    assert 0.1 * 3 != 0.3
    assert units_to_cents(3 * cents_to_units(0.1)) == 0.3


def test_it_refuses_units_that_are_not_an_int() -> None:
    for bad in (5.5, "55000", True, Decimal(55_000)):
        with pytest.raises(TypeError):
            units_to_cents(bad)  # type: ignore[arg-type]


def test_it_writes_amounts_for_people() -> None:
    assert cents_text(55_000) == "5.5"
    assert cents_text(50_000) == "5"
    assert cents_text(1) == "0.0001"
    assert cents_text(0) == "0"
    assert dollars_text(500_000_000) == "$500.00"
    assert dollars_text(55_000) == "$0.055"
    assert dollars_text(1_234_567_890) == "$1,234.56789"
    assert dollars_text(0) == "$0.00"
    assert dollars_text(-1_000_000) == "-$1.00"
