"""Reading an uploaded CSV: encoding, delimiter, header, rows numbered as a spreadsheet shows
them (the header is row 1). Pure: bytes in, rows out, or an ImportInputError saying why."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

MAX_BYTES = 50 * 1024 * 1024
MAX_ROWS = 1_000_000
SNIFF_BYTES = 64 * 1024
DELIMITERS = ",;\t|"

NumberedRow = tuple[int, Sequence[str]]  # (spreadsheet row number, the row's cells)


class ImportInputError(Exception):
    """The upload cannot be imported as it is; `status` and `code` go to the client."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ParsedCsv:
    encoding: str  # "utf-8" or "latin-1"
    delimiter: str
    headers: list[str]
    # (spreadsheet row number, cells); blank rows left out. Tuples: a large file's rows live
    # through the whole import, and the garbage collector stops scanning tuples of strings.
    rows: list[tuple[int, tuple[str, ...]]]


def decode(data: bytes) -> tuple[str, str]:
    """UTF-8 (with or without BOM), else Latin-1, which every byte string decodes as."""
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


def sniff_delimiter(text: str) -> str:
    sample = text[:SNIFF_BYTES]
    first_line = sample.split("\n", 1)[0]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=DELIMITERS)
        if dialect.delimiter in first_line:
            return dialect.delimiter
    except csv.Error:
        pass
    # The sniffer can be misled by quoted fields; the header line alone rarely lies.
    counts = {d: first_line.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


@dataclass(frozen=True)
class CsvFile:
    """An upload whose encoding, delimiter and header are read and checked; its rows are read
    as `rows` is iterated (which raises ImportInputError for what only the rows can show), so
    that a large file's rows can be worked on while the rest are still being read."""

    encoding: str
    delimiter: str
    headers: list[str]
    rows: Iterator[tuple[int, tuple[str, ...]]]


def open_csv(data: bytes) -> CsvFile:
    if len(data) > MAX_BYTES:
        raise ImportInputError(413, "file_too_large", f"the file is over {MAX_BYTES // 2**20} MB")
    if not data.strip():
        raise ImportInputError(400, "empty_file", "the file is empty")
    if b"\x00" in data[:SNIFF_BYTES]:
        raise ImportInputError(
            400, "not_csv", "the file is not text (is it a spreadsheet? save it as CSV)"
        )
    text, encoding = decode(data)
    delimiter = sniff_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
    try:
        headers = [h.strip() for h in next(reader)]
    except StopIteration:
        raise ImportInputError(400, "empty_file", "the file has no header row") from None
    if not any(headers):
        raise ImportInputError(400, "no_header", "the first row must name the columns")
    seen: set[str] = set()
    for header in headers:
        if header and header.lower() in seen:
            raise ImportInputError(400, "duplicate_header", f"the column {header!r} appears twice")
        seen.add(header.lower())
    return CsvFile(encoding, delimiter, headers, _rows(reader))


def _rows(reader: Iterator[list[str]]) -> Iterator[tuple[int, tuple[str, ...]]]:
    number = 1
    count = 0
    try:
        for cells in reader:
            number += 1
            if not any(c.strip() for c in cells):
                continue  # a blank line still takes its row number, as in a spreadsheet
            if count >= MAX_ROWS:
                raise ImportInputError(413, "too_many_rows", f"the file has over {MAX_ROWS:,} rows")
            count += 1
            yield number, tuple(cells)
    except csv.Error as exc:
        raise ImportInputError(400, "malformed_csv", f"row {number}: {exc}") from None
    if not count:
        raise ImportInputError(400, "empty_file", "the file has a header but no rows")


def parse_csv(data: bytes) -> ParsedCsv:
    """The whole file read and checked at once."""
    file = open_csv(data)
    return ParsedCsv(file.encoding, file.delimiter, file.headers, list(file.rows))
