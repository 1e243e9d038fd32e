"""``cdi dedupe FILE``: the quick path for one file with default settings.

Builds a one-source pipeline config from the command line and the file's
header, runs every stage into ``OUT/lake`` and writes ``OUT/clusters.csv``
(``record_id,golden_id``, one row per input record).

Without ``--map`` the mapping is proposed from the header: each column name is
normalized (lower case, letters and digits only, so ``First Name``,
``first-name`` and ``FIRST_NAME`` are all ``firstname``) and looked up in
``ALIASES``; failing that, a name that contains an alias among its words
(``attribute_by_part``). ``street_number`` joins ``street_name`` (or the
address column), and birth year, month and day columns join into
``birth_date``, through a mapping expression. ``--map COLUMN=ATTRIBUTE`` overrides any part of
the proposal and ``--map COLUMN=none`` leaves a column out. Without ``--id``
the record id is a column named like one (``ID_NAMES``) or else the first
remaining column whose values are all present and unique; when no column is,
each record is numbered by its row in the file (``row_number``). Columns mapped to
nothing are carried along in bronze but not compared. A CSV file's encoding
and delimiter are guessed from its first bytes (``jobs/csv_dialect.py``).
Only the header (and, to guess the id, the candidate columns' values) is
read, with pyarrow, before Spark starts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from config.pipeline import CONF_DIR, MAPPABLE_ATTRIBUTES, MappingExpression, PipelineConfig
from config.yaml_files import parse_model
from config.errors import ConfigError, SourceError
from jobs.csv_dialect import CsvDialect, sniff_file

T = TypeVar("T")

SOURCE_NAME = "input"
NOT_MAPPED = "none"

# Canonical attribute -> column names that hold it, before normalization.
ALIASES: dict[str, tuple[str, ...]] = {
    "given_name": ("first_name", "firstname", "forename", "forenames", "given", "given_name", "given_names",
                   "fname", "first", "first_names", "christian_name", "name_first"),
    "middle_name": ("middle_name", "middle_initial", "middlename", "middle", "middle_names", "midl_name", "mname"),
    "family_name": ("surname", "last_name", "lastname", "family_name", "lname", "last", "surnames", "family",
                    "name_last"),
    "full_name": ("name", "full_name", "fullname", "customer_name", "person_name", "client_name", "contact_name"),
    "birth_date": ("dob", "date_of_birth", "birth_date", "birthdate", "birthday", "date_birth", "bdate",
                   "birth_dt", "born"),
    "gender": ("sex", "gender"),
    "email": ("email", "e_mail", "email_address", "mail", "e_mail_address"),
    "phone": ("phone", "telephone", "phone_number", "mobile", "tel", "phone_no", "tel_no", "telephone_number",
              "mobile_number", "cell", "cell_phone", "contact_number"),
    "address_line1": ("address", "address_1", "address1", "street", "street_address", "address_line1", "addr",
                      "addr1", "add1", "street_address_1", "residential_address"),
    "address_line2": ("address_2", "address2", "address_line2", "addr2", "add2"),
    "city": ("city", "town", "suburb", "locality", "municipality"),
    "postcode": ("zip", "zipcode", "zip_code", "postcode", "postal_code", "postal"),
    "region": ("state", "county", "region", "province"),
    "country": ("country",),
    "national_id": ("ssn", "soc_sec_id", "social_security_number", "national_id", "nino", "tax_id",
                    "national_insurance_number"),
}
# A column whose name only contains an alias (``postcode_fake``, ``home_phone``, ``res_city_desc``,
# ``fname_c1``) is proposed for an attribute no column names exactly; never for full_name, as
# ``street_name`` or ``company_name`` are not a person's name.
NOT_BY_PART = frozenset({"full_name"})
# ... nor when another word of the name says the column describes the value rather than holds it.
NOT_A_VALUE = frozenset({
    "type", "kind", "flag", "verified", "valid", "validated", "status", "consent", "opt", "optin", "count",
    "source", "updated", "created", "date", "time", "format", "score", "quality", "length", "confidence",
    "year", "month", "day", "age",
})
STREET_NUMBER = ("street_number", "street_no", "house_number", "house_no", "st_no", "street_num", "house_num")
STREET_NAME = ("street_name",)
# A birth date held as three columns, joined when no column holds the date.
BIRTH_YEAR = ("birth_year", "year_of_birth", "yob", "byear", "by", "dob_year")
BIRTH_MONTH = ("birth_month", "month_of_birth", "mob", "bmonth", "bm", "dob_month")
BIRTH_DAY = ("birth_day", "day_of_birth", "bday", "bd", "dob_day")
ID_NAMES = ("id", "record_id", "rec_id", "key", "record_key", "customer_id", "unique_id", "uid", "person_id")
ROW_NUMBER = "row_number"


def normalize_name(name: str) -> str:
    """``' First-Name '`` → ``'firstname'``: case, spaces, dashes, underscores and other punctuation ignored."""
    return "".join(c for c in name.casefold() if c.isalnum())


_ATTRIBUTE_BY_NAME = {normalize_name(alias): attribute for attribute, aliases in ALIASES.items() for alias in aliases}


@dataclass(frozen=True)
class MappedColumn:
    """One canonical attribute and the header column(s) it comes from."""

    attribute: str
    columns: tuple[str, ...]
    expression: str | None = None  # Spark SQL over the columns' bronze names, when there are several
    origin: str = "header"  # "header" (proposed) or "--map"

    @property
    def source(self) -> str | MappingExpression:
        """The value of the config's ``mapping`` entry: the column by its bronze name, or the expression."""
        from jobs.sources import safe_column_name

        return MappingExpression(expr=self.expression) if self.expression else safe_column_name(self.columns[0])

    def describe(self) -> str:
        return self.expression or self.columns[0]


def _quoted(column: str) -> str:
    """The column as ingest names it in bronze, quoted for Spark SQL."""
    from jobs.sources import safe_column_name

    return "`" + safe_column_name(column).replace("`", "``") + "`"


def street_expression(number: str, street: str) -> str:
    return f"concat_ws(' ', {_quoted(number)}, {_quoted(street)})"


def date_expression(year: str, month: str, day: str) -> str:
    """``yyyy-MM-dd`` from three columns; a part without digits leaves a string no date format reads."""
    parts = [
        f"lpad(nullif(regexp_extract(cast({_quoted(c)} AS string), '^ *([0-9]{{1,4}})', 1), ''), {width}, '0')"
        for c, width in ((year, 4), (month, 2), (day, 2))
    ]
    return f"concat_ws('-', {', '.join(parts)})"


def name_tokens(name: str) -> list[str]:
    """``'resCityDesc'`` → ``['res', 'city', 'desc']``; ``'fname_c1'`` → ``['fname', 'c', '1']``."""
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name)
    return [t.casefold() for t in re.findall(r"[^\W\d_]+|\d+", spaced)]


def attribute_by_part(name: str) -> str | None:
    """The attribute of the longest run of the name's words that is an alias, the rightmost of equal runs."""
    tokens = name_tokens(name)
    if NOT_A_VALUE.intersection(tokens):
        return None
    for size in range(len(tokens) - 1, 0, -1):
        for start in range(len(tokens) - size, -1, -1):
            attribute = _ATTRIBUTE_BY_NAME.get("".join(tokens[start : start + size]))
            if attribute is not None and attribute not in NOT_BY_PART:
                return attribute
    return None


def _first(columns: Iterable[str], names: Collection[str]) -> str | None:
    wanted = {normalize_name(n) for n in names}
    return next((c for c in columns if normalize_name(c) in wanted), None)


def propose_mapping(
    columns: Sequence[str],
    exclude: Collection[str] = (),
    attributes: Collection[str] = MAPPABLE_ATTRIBUTES,
) -> list[MappedColumn]:
    """The mapping a header suggests, in ``ALIASES`` order; the first column wins an attribute.

    ``exclude`` (the id column) is never mapped. An attribute not in
    ``attributes`` is not proposed. A street number column is joined with the
    street name column (``street_number + street_name``) or, when the file has
    an address column, with that one (FEBRL's ``street_number + address_1``).
    """
    free = [c for c in columns if c not in exclude]
    joined: dict[str, MappedColumn] = {}
    date_parts = [_first(free, names) for names in (BIRTH_YEAR, BIRTH_MONTH, BIRTH_DAY)]
    exact = {c: _ATTRIBUTE_BY_NAME.get(normalize_name(c)) for c in free}
    dated = any(a == "birth_date" for c, a in exact.items() if c not in date_parts)  # birth_day is "birthday"
    if all(date_parts) and not dated and "birth_date" in attributes:
        year, month, day = date_parts
        joined["birth_date"] = MappedColumn("birth_date", (year, month, day), date_expression(year, month, day))
    by_attribute: dict[str, str] = {}
    taken = {c for m in joined.values() for c in m.columns}
    for column in free:
        attribute = exact[column]
        if column not in taken and attribute in attributes and attribute not in by_attribute:
            by_attribute[attribute] = column
    number = _first(free, STREET_NUMBER)
    street = by_attribute.get("address_line1") or _first(free, STREET_NAME)
    if number and street and "address_line1" in attributes:
        joined["address_line1"] = MappedColumn("address_line1", (number, street), street_expression(number, street))
        by_attribute.pop("address_line1", None)
    taken |= {c for m in joined.values() for c in m.columns} | set(by_attribute.values())
    for column in free:
        attribute = attribute_by_part(column) if exact[column] is None else None
        if column not in taken and attribute in attributes and attribute not in by_attribute and attribute not in joined:
            by_attribute[attribute] = column
            taken.add(column)
    return [joined[a] if a in joined else MappedColumn(a, (by_attribute[a],)) for a in ALIASES
            if a in joined or a in by_attribute]


def _position(mapping: Sequence[MappedColumn], attribute: str) -> int:
    """Where ``attribute`` goes to keep ``ALIASES`` order."""
    order = list(ALIASES)
    rank = order.index(attribute) if attribute in order else len(order)
    return sum(1 for m in mapping if (order.index(m.attribute) if m.attribute in order else len(order)) < rank)


def parse_overrides(items: Sequence[str]) -> list[tuple[str, str | None]]:
    """``["first=given_name", "notes=none"]`` → ``[("first", "given_name"), ("notes", None)]``."""
    overrides: list[tuple[str, str | None]] = []
    seen: dict[str, str] = {}
    for item in items:
        column, sep, attribute = item.rpartition("=")
        if not sep or not column or not attribute:
            raise ConfigError(f"--map {item!r}: expected SOURCE_COLUMN=canonical_attribute (or SOURCE_COLUMN=none)")
        if attribute != NOT_MAPPED:
            if attribute in seen:
                raise ConfigError(f"--map: attribute {attribute!r} is mapped twice ({seen[attribute]!r}, {column!r})")
            seen[attribute] = column
        overrides.append((column, None if attribute == NOT_MAPPED else attribute))
    return overrides


def apply_overrides(
    proposal: Sequence[MappedColumn],
    overrides: Sequence[tuple[str, str | None]],
    columns: Sequence[str],
    attributes: Collection[str] = MAPPABLE_ATTRIBUTES,
) -> list[MappedColumn]:
    """The proposal with every ``--map`` applied: a mapped column leaves whatever it was proposed for."""
    mapping = list(proposal)
    for column, attribute in overrides:
        if column not in columns:
            raise ConfigError(f"--map {column}={attribute or NOT_MAPPED}: the file has no column {column!r}; "
                              f"it has: {', '.join(columns)}")
        if attribute is not None and attribute not in attributes:
            raise ConfigError(f"--map {column}={attribute}: {attribute!r} is not a canonical attribute; "
                              f"expected one of {', '.join(sorted(attributes))} (or none)")
        mapping = [m for m in mapping if column not in m.columns and m.attribute != attribute]
        if attribute is not None:
            mapping.insert(_position(mapping, attribute), MappedColumn(attribute, (column,), origin="--map"))
    return mapping


def not_compared(columns: Sequence[str], mapping: Sequence[MappedColumn], id_column: str | None) -> list[str]:
    used = {c for m in mapping for c in m.columns}
    return [c for c in columns if c not in used and c != id_column]


def id_candidates(columns: Sequence[str], mapping: Sequence[MappedColumn]) -> tuple[list[str], list[str]]:
    """(columns named like a record id, the other columns no attribute uses), both in header order."""
    used = {c for m in mapping for c in m.columns}
    wanted = {normalize_name(n) for n in ID_NAMES}
    named = [c for c in columns if normalize_name(c) in wanted]
    others = [c for c in columns if c not in used and c not in named]
    return named, others


def is_unique_key(values: Sequence[object]) -> bool:
    """Every value present (not null, not blank) and no value twice."""
    present = [v for v in values if v is not None and str(v).strip() != ""]
    return len(present) == len(values) and len(set(present)) == len(present)


def guess_id_column(
    columns: Sequence[str], mapping: Sequence[MappedColumn], values: Mapping[str, Sequence[object]]
) -> tuple[str | None, str]:
    """(column, why) for the record id, or (None, why) when no column can be one and rows are numbered.

    ``values`` holds the values of the candidates that can be one (see
    ``id_candidates``; a name the header repeats cannot).
    """
    named, others = id_candidates(columns, mapping)
    for column in named:
        if column in values and is_unique_key(values[column]):
            return column, "named like a record id"
    for column in others:
        if column in values and is_unique_key(values[column]):
            return column, "its values are all present and unique"
    tried = f"{', '.join(named)} has blank or repeated values" if named else "no column holds unique values"
    return None, f"{tried}: each record is numbered by its row in the file, 1 for the first; --id COLUMN names one"


_NUMERIC_DATE = re.compile(r"^\s*(\d{1,2})[/.-](\d{1,2})[/.-]\d{4}\b")


@dataclass(frozen=True)
class DateOrder:
    """Whether ``03/04/1990`` is read day first, and why (a line of the plan)."""

    day_first: bool
    reason: str


def date_order(values: Iterable[object], given: bool | None = None) -> DateOrder:
    """Day or month first, as given on the command line or else as the file's own dates tell.

    A date whose first number is over 12 is written day first (``31/12/1990``),
    one whose second is over 12 month first (``12/31/1990``). The order most
    such dates have wins; without any, or on a tie, day first.
    """
    if given is not None:
        return DateOrder(given, "--day-first" if given else "--month-first")
    day_first = month_first = 0
    for value in values:
        found = _NUMERIC_DATE.match(str(value)) if value is not None else None
        if found:
            first, second = int(found.group(1)), int(found.group(2))
            day_first += first > 12 >= second
            month_first += second > 12 >= first
    told = day_first + month_first
    if month_first > day_first:
        return DateOrder(False, f"month first: {month_first:,} of the {told:,} birth dates that show the order "
                         "are written like 12/31/1990")
    if day_first:
        return DateOrder(True, f"day first: {day_first:,} of the {told:,} birth dates that show the order "
                         "are written like 31/12/1990")
    return DateOrder(True, "day first: no birth date shows the order (--month-first reads 03/04/1990 as 4 March)")

# A header name that is a number, a date, a phone number or an email address is a value: a file whose
# first line holds two of them has no header (its first record would be taken for the columns' names).
RECORD_VALUE = re.compile(r"[+(]?\d[\d\s().,:/+-]*|[^@\s]+@[^@\s]+\.[^@\s]+")
MIN_VALUES_IN_HEADER = 2


def row_number_column(columns: Sequence[str]) -> str:
    """The name of the column of row numbers: ``row_number``, numbered on when the file has it already."""
    from jobs.sources import safe_column_names

    return safe_column_names([*columns, ROW_NUMBER])[-1]


# pyarrow reads a CSV file in blocks, and a row longer than one block stops it ("straddling object"):
# the block grows fourfold from pyarrow's default until the longest row fits, up to a gibibyte.
BLOCK_BYTES = 1 << 20
MAX_BLOCK_BYTES = 1 << 30


def _csv_options(dialect: CsvDialect, names: Sequence[str] | None = None, block_bytes: int = BLOCK_BYTES) -> dict[str, object]:
    """pyarrow's options for the file; rows with too many or too few fields are skipped (ingest quarantines them).

    With ``names`` the header line is read as a row and skipped, and the columns take those names.
    """
    import pyarrow.csv as pa_csv

    header = {"column_names": list(names), "skip_rows_after_names": 1} if names is not None else {}
    return {
        "read_options": pa_csv.ReadOptions(encoding=dialect.python_encoding, block_size=block_bytes, **header),
        "parse_options": pa_csv.ParseOptions(
            delimiter=dialect.delimiter, newlines_in_values=True, invalid_row_handler=lambda row: "skip"
        ),
    }


def read_header(path: Path, dialect: CsvDialect | None) -> list[str]:
    """The file's column names, without reading its rows (``dialect``: how a CSV file is written)."""
    import pyarrow.csv as pa_csv
    import pyarrow.dataset as ds

    if dialect is None:
        return list(ds.dataset(str(path), format="parquet").schema.names)

    def header_names(block_bytes: int) -> list[str]:
        with pa_csv.open_csv(str(path), **_csv_options(dialect, block_bytes=block_bytes)) as reader:
            return list(reader.schema.names)

    try:
        names = _in_growing_blocks(header_names)
    except Exception as exc:  # pyarrow.lib.ArrowInvalid and friends
        raise SourceError(f"{path}: cannot read the CSV header ({exc})") from None
    return [name or f"_c{index}" for index, name in enumerate(names)]  # Spark's name for a blank one


def read_columns(
    path: Path, dialect: CsvDialect | None, header: Sequence[str], columns: Sequence[str]
) -> dict[str, list[object]]:
    """The values of ``columns`` (as text for CSV; blanks as None); ``header`` is ``read_header``'s names."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.dataset as ds

    if not columns:
        return {}
    if dialect is None:
        table = ds.dataset(str(path), format="parquet").to_table(columns=list(columns))
    else:
        options = pa_csv.ConvertOptions(
            include_columns=list(columns),
            column_types={c: pa.string() for c in columns},
            strings_can_be_null=True,
        )
        table = _in_growing_blocks(
            lambda block_bytes: pa_csv.read_csv(str(path), convert_options=options, **_csv_options(dialect, header, block_bytes))
        )
    return {c: table.column(c).to_pylist() for c in columns}


def _in_growing_blocks(read: Callable[[int], T]) -> T:
    """``read(block_bytes)``, again with blocks four times as big while a row straddles two of them."""
    import pyarrow as pa

    block_bytes = BLOCK_BYTES
    while True:
        try:
            return read(block_bytes)
        except pa.ArrowInvalid as exc:
            if "straddl" not in str(exc) or block_bytes >= MAX_BLOCK_BYTES:
                raise
            block_bytes *= 4


CSV_SUFFIXES = (".csv", ".tsv", ".txt")  # each may end in .gz as well: Spark and pyarrow read gzip by the name
PARQUET_SUFFIXES = (".parquet", ".pq")
# Files known by their name or first bytes that cdi dedupe does not read: the user is told to export them.
NOT_READ_SUFFIXES = (".xlsx", ".xls", ".xlsm", ".ods", ".zip", ".json", ".jsonl", ".ndjson", ".xml", ".sav", ".dta", ".sas7bdat")
ZIP_MAGIC, OLE_MAGIC, GZIP_MAGIC, PARQUET_MAGIC = b"PK\x03\x04", b"\xd0\xcf\x11\xe0", b"\x1f\x8b", b"PAR1"


def _kind(path: Path) -> str:
    """``csv`` or ``parquet``, by the file's name, or by its first bytes when the name does not say (``people``,
    ``people.dat``): Parquet's magic number, else delimited text, which the dialect sniffer reads. A ``.gz``
    name of any other file is taken as gzipped text."""
    suffixes = [s.lower() for s in path.suffixes]
    compressed = suffixes[-1:] == [".gz"]
    if compressed:
        suffixes.pop()
    last = suffixes[-1] if suffixes else ""
    if last in CSV_SUFFIXES:
        return "csv"
    if last in PARQUET_SUFFIXES and not compressed:
        return "parquet"
    expected = f"expected a CSV file ({', '.join(CSV_SUFFIXES)}, or one of them .gz) or a .parquet file"
    if last in NOT_READ_SUFFIXES or last in PARQUET_SUFFIXES:
        raise ConfigError(f"{path}: {expected}")
    if compressed:
        return "csv"
    try:
        with path.open("rb") as handle:
            head = handle.read(4)
    except OSError:
        return "csv"  # not found, or a folder: the plan says so in its own words
    if head == PARQUET_MAGIC:
        return "parquet"
    if head in (ZIP_MAGIC, OLE_MAGIC) or head[:2] == GZIP_MAGIC:
        raise ConfigError(f"{path}: a compressed file or a spreadsheet by its first bytes; {expected}")
    return "csv"


@dataclass(frozen=True)
class DedupePlan:
    path: Path
    columns: tuple[str, ...]
    id_column: str
    id_reason: str
    mapping: tuple[MappedColumn, ...]
    dialect: CsvDialect | None = None  # a CSV file's encoding and delimiter; None for Parquet
    numbered: bool = False  # id_column is not the file's: cdi adds it, holding each row's number
    dates: DateOrder = DateOrder(True, "day first")

    @property
    def config_mapping(self) -> dict[str, str | MappingExpression]:
        return {m.attribute: m.source for m in self.mapping}

    @property
    def not_compared(self) -> list[str]:
        return not_compared(self.columns, self.mapping, self.id_column)


def _bronze_positions(columns: Sequence[str]) -> dict[str, list[int]]:
    """Each bronze name (compared without case, as Spark does) -> where the header has it (1-based)."""
    from jobs.sources import safe_column_name

    positions: dict[str, list[int]] = {}
    for number, name in enumerate(columns, start=1):
        positions.setdefault(safe_column_name(name).casefold(), []).append(number)
    return positions


def _positions(positions: Mapping[str, list[int]], column: str) -> list[int]:
    from jobs.sources import safe_column_name

    return positions[safe_column_name(column).casefold()]


def check_unique_names(
    path: Path, columns: Sequence[str], positions: Mapping[str, list[int]], used: Iterable[str]
) -> None:
    """A used column that lands in bronze under the same name as another column is a ConfigError
    (``positions``: ``_bronze_positions`` of ``columns``)."""
    for column in dict.fromkeys(used):
        found = _positions(positions, column)
        if len(found) > 1:
            names = ", ".join(f"{columns[n - 1]!r}" for n in found)
            raise ConfigError(
                f"{path}: {column!r} cannot be told apart from another column: {names} "
                f"(columns {', '.join(map(str, found))}) land under one name; "
                "rename them in the file, or map another column with --map COLUMN=ATTRIBUTE"
            )


def plan_dedupe(
    path: Path, id_column: str | None, map_items: Sequence[str], day_first: bool | None = None
) -> DedupePlan:
    """Read the header (and, without ``--id``, the id candidates), propose a mapping and apply ``--map``.

    Without ``day_first`` (``--day-first`` / ``--month-first``) the birth date column's
    values tell the date order (``date_order``).
    """
    kind = _kind(path)
    if not path.exists():
        raise SourceError(f"{path}: file not found")
    try:
        dialect = sniff_file(path) if kind == "csv" else None
    except (OSError, EOFError) as exc:  # a broken gzip file, a folder
        raise SourceError(f"{path}: cannot read ({exc})") from None
    columns = read_header(path, dialect)
    if dialect is not None and columns and re.fullmatch(r"sep=.?", columns[0].strip(), re.IGNORECASE):
        raise ConfigError(
            f"{path}: the first line ({columns[0].strip()!r}…) is Excel's delimiter hint, not the header; "
            "Spark cannot skip it: delete that line and run again"
        )
    values_in_header = [c for c in columns if RECORD_VALUE.fullmatch(c.strip())]
    if dialect is not None and len(values_in_header) >= MIN_VALUES_IN_HEADER:
        raise ConfigError(
            f"{path}: the first line looks like a record, not a header "
            f"({', '.join(repr(c) for c in values_in_header[:3])} are values, not column names); "
            "cdi dedupe reads the first line as the columns' names: add a header line and run again"
        )
    positions = _bronze_positions(columns)
    overrides = parse_overrides(map_items)
    if id_column is not None and id_column not in columns:
        raise ConfigError(f"--id {id_column}: the file has no column {id_column!r}; it has: {', '.join(columns)}")
    overridden = {column for column, _ in overrides}
    exclude = {id_column} - overridden if id_column else set()
    mapping = apply_overrides(propose_mapping(columns, exclude=exclude), overrides, columns)
    if not mapping:
        raise ConfigError(
            f"{path}: no column is named like a canonical attribute ({', '.join(ALIASES)}); "
            "map columns with --map COLUMN=ATTRIBUTE"
        )
    birth = [m.columns[0] for m in mapping if m.attribute == "birth_date" and not m.expression]
    dated = birth if birth and day_first is None and len(_positions(positions, birth[0])) == 1 else []
    if id_column is not None:
        reason = "--id"
        values = read_columns(path, dialect, columns, dated)
    else:
        named, others = id_candidates(columns, mapping)
        readable = [c for c in [*named, *others] if len(_positions(positions, c)) == 1]  # others get renamed
        values = read_columns(path, dialect, columns, list(dict.fromkeys([*readable, *dated])))
        id_column, reason = guess_id_column(columns, mapping, values)
    dates = date_order(values.get(dated[0], []) if dated else [], day_first)
    numbered = id_column is None
    if numbered:
        id_column = row_number_column(columns)
    used = [*([] if numbered else [id_column]), *(c for m in mapping for c in m.columns)]
    check_unique_names(path, columns, positions, used)
    return DedupePlan(path, tuple(columns), id_column, reason, tuple(mapping), dialect, numbered, dates)


def format_plan(plan: DedupePlan) -> str:
    """The mapping as it will run, one attribute a line, printed before Spark starts."""
    width = max(len("record id"), *(len(m.attribute) for m in plan.mapping))
    lines = [f"{plan.path}: {len(plan.columns)} columns{_dialect_note(plan.dialect)}",
             f"  {'record id':<{width}}  {plan.id_column} ({plan.id_reason})"]
    for m in plan.mapping:
        note = "  (--map)" if m.origin == "--map" else ""
        lines.append(f"  {m.attribute:<{width}}  ← {m.describe()}{note}")
    if any(m.attribute == "birth_date" for m in plan.mapping):
        lines.append(f"  dates: {plan.dates.reason}")
    rest = plan.not_compared
    lines.append(f"  not compared: {', '.join(rest) if rest else '(none)'}")
    lines.append("Change a line with --map COLUMN=ATTRIBUTE, leave a column out with --map COLUMN=none.")
    return "\n".join(lines)


DELIMITER_NAMES = {",": "commas", ";": "semicolons", "\t": "tabs", "|": "bars"}
# The charsets Spark 4 reads without spark.sql.legacy.javaCharsets.
SPARK_CHARSETS = {"UTF-8", "UTF-16", "UTF-16LE", "UTF-16BE", "UTF-32", "ISO-8859-1", "US-ASCII"}
JAVA_CHARSETS = "spark.sql.legacy.javaCharsets"


def _dialect_note(dialect: CsvDialect | None) -> str:
    """How the CSV file is read, when it is not plain UTF-8 with commas."""
    if dialect is None or dialect == CsvDialect("UTF-8", ","):
        return ""
    return f" (read as {dialect.encoding}, fields separated by {DELIMITER_NAMES[dialect.delimiter]})"


def dedupe_config(plan: DedupePlan, out: Path, region: str) -> PipelineConfig:
    source = {
        "name": SOURCE_NAME,
        "kind": _kind(plan.path),
        "path": str(plan.path),
        "primary_key": [plan.id_column],
        "mapping": dict(plan.config_mapping),
        "standardize": {"default_region": region, "day_first": plan.dates.day_first},
    }
    if plan.numbered:
        source["row_number_column"] = plan.id_column
    spark: dict[str, str] = {}
    if plan.dialect is not None:
        source["multiline"] = True  # a file nobody configured: quoted fields may hold line breaks
        source["encoding"] = plan.dialect.encoding
        source["delimiter"] = plan.dialect.delimiter
        if plan.dialect.encoding not in SPARK_CHARSETS:
            spark[JAVA_CHARSETS] = "true"  # Spark 4 reads windows-1252 only with Java's charsets allowed
    return parse_model(
        PipelineConfig,
        {
            "lake": str(out / "lake"),
            "canonical_suite": str(CONF_DIR / "quality" / "dedupe.yaml"),
            "sources": [source],
            "spark": spark,
        },
        "command line",
    )
