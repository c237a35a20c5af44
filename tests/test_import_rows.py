"""Pure parts of the import: reading, mapping, normalising, deciding. No database."""

from __future__ import annotations

import gc
from zoneinfo import ZoneInfo

import pytest

from smsapp.imports.reading import MAX_BYTES, ImportInputError, parse_csv
from smsapp.imports.rows import (
    Decider,
    Existing,
    Lookups,
    decide,
    guess_mapping,
    normalise_row,
    parse_consent_at,
    split_tags,
    validate_mapping,
)
from smsapp.imports.service import cyclic_gc_paused

SYDNEY = ZoneInfo("Australia/Sydney")


@pytest.mark.parametrize(
    ("data", "delimiter", "encoding"),
    [
        (b"phone,name\n0412345678,Ann\n", ",", "utf-8"),
        (b"\xef\xbb\xbfphone;name\n0412345678;Ann\n", ";", "utf-8"),
        (b"phone\tname\n0412345678\tAnn\n", "\t", "utf-8"),
        (b"phone|name\n0412345678|Ann\n", "|", "utf-8"),
        ("phone,name\n0412345678,Zoë\n".encode("latin-1"), ",", "latin-1"),
        ("phone,name\r\n0412345678,Zoë\r\n".encode(), ",", "utf-8"),
    ],
)
def test_it_reads_encodings_and_delimiters(data: bytes, delimiter: str, encoding: str) -> None:
    parsed = parse_csv(data)
    assert parsed.delimiter == delimiter
    assert parsed.encoding == encoding
    assert parsed.headers == ["phone", "name"]
    assert parsed.rows[0][1][0] == "0412345678"
    assert parsed.rows[0][1][1] in ("Ann", "Zoë")


def test_it_numbers_rows_as_a_spreadsheet_with_quoted_newlines_and_blank_lines() -> None:
    data = b'phone,note\n0412345678,"two\nlines"\n\n0412345679,x\n,\n0412345670,y\n'
    parsed = parse_csv(data)
    assert [n for n, _ in parsed.rows] == [2, 4, 6]
    assert parsed.rows[0][1][1] == "two\nlines"


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"", 400, "empty_file"),
        (b"   \n", 400, "empty_file"),
        (b"phone,name\n", 400, "empty_file"),
        (b",,\n1,2,3\n", 400, "no_header"),
        (b"phone,Phone\n1,2\n", 400, "duplicate_header"),
        (b"PK\x03\x04\x00\x00binary", 400, "not_csv"),
    ],
)
def test_it_refuses_unreadable_files(data: bytes, status: int, code: str) -> None:
    with pytest.raises(ImportInputError) as caught:
        parse_csv(data)
    assert (caught.value.status, caught.value.code) == (status, code)


def test_it_refuses_a_file_over_50_mb_with_413() -> None:
    with pytest.raises(ImportInputError) as caught:
        parse_csv(b"phone\n" + b"0" * MAX_BYTES)
    assert caught.value.status == 413


def test_it_refuses_over_a_million_rows_with_413(monkeypatch: pytest.MonkeyPatch) -> None:
    import smsapp.imports.reading as reading

    monkeypatch.setattr(reading, "MAX_ROWS", 3)
    with pytest.raises(ImportInputError) as caught:
        parse_csv(b"phone\n1\n2\n3\n4\n")
    assert (caught.value.status, caught.value.code) == (413, "too_many_rows")


def test_it_guesses_common_header_names() -> None:
    headers = ["Mobile", "E-mail", "First Name", "Surname", "Post Code", "State", "Tags", "Other"]
    assert guess_mapping(headers) == {
        "phone": "Mobile", "email": "E-mail", "first_name": "First Name", "last_name": "Surname",
        "postcode": "Post Code", "state": "State", "tags": "Tags",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("mapping", "code", "words"),
    [
        ({"email": "Email"}, "bad_mapping", "phone"),
        ({"phone": "Cell"}, "missing_header", "'Cell'"),
        ({"phone": "Mobile", "Bad Name": "Email"}, "bad_mapping", "attribute"),
        ({"phone": 3}, "bad_mapping", "header"),
        ([], "bad_mapping", "JSON object"),
    ],
)
def test_it_refuses_a_bad_mapping_naming_the_problem(
    mapping: object, code: str, words: str
) -> None:
    with pytest.raises(ImportInputError) as caught:
        validate_mapping(mapping, ["Mobile", "Email"])
    assert caught.value.code == code
    assert words in caught.value.message


def test_it_matches_mapping_headers_case_insensitively_and_takes_attributes() -> None:
    assert validate_mapping({"phone": "mobile", "tier": "EMAIL"}, ["Mobile", "Email"]) == {
        "phone": "Mobile", "tier": "Email",
    }  # fmt: skip


COLUMNS = {"phone": 0, "email": 1, "first_name": 2, "country": 3, "state": 4, "postcode": 5,
           "timezone": 6, "tags": 7, "consent_at": 8, "tier": 9}  # fmt: skip


def row(*cells: str) -> list[str]:
    return list(cells) + [""] * (10 - len(cells))


@pytest.mark.parametrize(
    ("cells", "e164", "problem"),
    [
        (row("0412 345 678"), "+61412345678", None),
        (row("+61 412 345 678"), "+61412345678", None),
        (row("0412 345"), None, "invalid_number"),
        (row("61412345678"), "+61412345678", None),
        (row("(02) 9876 5432"), None, "not_mobile"),
        (row(""), None, "missing_phone"),
        (row("call me"), None, "unparseable"),
        (row("021 234 5678", "", "", "NZ"), "+64212345678", None),
        (row("07911 123456", "", "", "gb"), "+447911123456", None),
        (row("0412345678", "", "", "Australia"), "+61412345678", None),
    ],
)
def test_it_normalises_phones_by_the_rows_country(
    cells: list[str], e164: str | None, problem: str | None
) -> None:
    result = normalise_row(2, cells, COLUMNS, default_country="AU", tenant_tz=SYDNEY)
    assert (result.phone_e164, result.problem) == (e164, problem)


@pytest.mark.parametrize(
    ("state", "postcode", "tz", "expected"),
    [
        ("WA", "", "", "Australia/Perth"),
        ("qld", "", "", "Australia/Brisbane"),
        ("", "5000", "", "Australia/Adelaide"),
        ("", "0800", "", "Australia/Darwin"),
        ("", "2600", "", "Australia/Sydney"),
        ("Victoria", "", "", "Australia/Sydney"),
        ("", "", "Australia/Perth", "Australia/Perth"),
        ("", "", "Mars/Olympus", None),
        ("", "", "", None),
    ],
)
def test_it_derives_the_contacts_timezone(
    state: str, postcode: str, tz: str, expected: str | None
) -> None:
    cells = row("0412345678", "", "", "", state, postcode, tz)
    assert (
        normalise_row(2, cells, COLUMNS, default_country="AU", tenant_tz=SYDNEY).timezone
        == expected
    )


def test_it_keeps_extras_as_attributes_and_splits_tags() -> None:
    cells = row(
        "0412345678", "Ann@Example.COM", "Ann", "", "", "", "", "vip; vip, winter|x", "", "gold"
    )
    result = normalise_row(2, cells, COLUMNS, default_country="AU", tenant_tz=SYDNEY)
    assert result.email == "ann@example.com"
    assert result.tags == ["vip", "winter", "x"]
    assert result.attributes == {"tier": "gold"}
    assert split_tags("") == []


@pytest.mark.parametrize(
    ("raw", "iso"),
    [
        ("2025-03-01", "2025-02-28T13:00:00+00:00"),
        ("2025-03-01T09:30:00Z", "2025-03-01T09:30:00+00:00"),
        ("01/03/2025", "2025-02-28T13:00:00+00:00"),
        ("01/03/2025 14:30", "2025-03-01T03:30:00+00:00"),
        ("yesterday", None),
    ],
)
def test_it_reads_consent_dates_in_the_tenants_timezone(raw: str, iso: str | None) -> None:
    parsed = parse_consent_at(raw, SYDNEY)
    assert (parsed.isoformat() if parsed else None) == iso


def _rows(*phones_and_emails: tuple[str, str]) -> list:  # type: ignore[type-arg]
    return [
        normalise_row(n + 2, row(p, e), COLUMNS, default_country="AU", tenant_tz=SYDNEY)
        for n, (p, e) in enumerate(phones_and_emails)
    ]


def test_it_decides_in_the_packs_order_first_match_wins() -> None:
    rows = _rows(
        ("bad", ""),                              # 2 invalid_phone
        ("0412000001", ""),                       # 3 create
        ("0412 000 001", ""),                     # 4 duplicate of 3
        ("0412000002", ""),                       # 5 dnc (also suppressed, also existing)
        ("0412000003", ""),                       # 6 suppressed (also existing)
        ("0412000004", ""),                       # 7 update by phone
        ("0412000005", "old@example.com"),        # 8 update by email, phone changes
    )  # fmt: skip
    existing = {
        "+61412000002": Existing(10, "+61412000002", None),
        "+61412000003": Existing(11, "+61412000003", None),
        "+61412000004": Existing(12, "+61412000004", None),
    }
    lookups = Lookups(
        dnc=frozenset({"+61412000002"}),
        suppressed=frozenset({"+61412000002", "+61412000003"}),
        by_phone=existing,
        by_email={"old@example.com": Existing(13, "+61499999999", "old@example.com")},
    )
    got = [
        (d.row, d.decision, d.reasons, d.contact_id, d.previous_phone_e164)
        for d in decide(rows, lookups)
    ]
    assert got == [
        (2, "invalid_phone", ["unparseable"], None, None),
        (3, "create", [], None, None),
        (4, "duplicate", ["duplicate_of_row:3"], None, None),
        (5, "dnc", ["dnc"], None, None),
        (6, "suppressed_by_cooldown", ["suppressed"], None, None),
        (7, "update", ["matched_phone"], 12, None),
        (8, "update", ["matched_email", "phone_changed"], 13, "+61499999999"),
    ]


def test_it_decides_a_file_in_slices_as_it_decides_it_whole() -> None:
    rows = _rows(
        ("0412000001", "a@example.com"), ("0412000002", ""), ("0412 000 001", ""),
        ("0412000003", "a@example.com"), ("0412000002", ""), ("0412000004", "a@example.com"),
    )  # fmt: skip
    lookups = Lookups(
        frozenset(),
        frozenset(),
        {},
        {"a@example.com": Existing(13, "+61499999999", "a@example.com")},
    )
    whole = decide(rows, lookups)
    decider = Decider()
    sliced = [d for part in (rows[:2], rows[2:3], rows[3:]) for d in decider.decide(part, lookups)]
    assert sliced == whole
    assert [d.decision for d in whole] == [
        "update", "create", "duplicate", "create", "duplicate", "create"
    ]  # fmt: skip


def test_it_matches_one_contact_by_email_once() -> None:
    rows = _rows(("0412000005", "old@example.com"), ("0412000006", "old@example.com"))
    lookups = Lookups(
        frozenset(),
        frozenset(),
        {},
        {"old@example.com": Existing(13, "+61499999999", "old@example.com")},
    )
    assert [d.decision for d in decide(rows, lookups)] == ["update", "create"]


def test_it_pauses_the_cyclic_gc_until_the_last_import_ends() -> None:
    assert gc.isenabled()
    with cyclic_gc_paused():
        with cyclic_gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer import still runs
    assert gc.isenabled()
    gc.disable()  # whoever disabled it before keeps it disabled
    try:
        with cyclic_gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
