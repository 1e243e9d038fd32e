"""Email and phone normalizers.

No Spark built-in knows the numbering plans of phone numbers; libphonenumber
does: ``to_e164`` uses its Python port (``phonenumbers``), in a pandas UDF, and
cdi's jar holds the same function over the Java library at the same version,
which the jobs use when the session has it (``normalize_phone``).
"""

from __future__ import annotations

import re

import pandas as pd
import phonenumbers
from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql.types import StringType

from matching.normalize import blank_to_null, is_in

_INVISIBLE = r"[\x{200B}-\x{200D}\x{2060}\x{FEFF}]"
# One '@', no whitespace, a dot inside the domain.
_EMAIL = r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$"
GMAIL_DOMAINS: tuple[str, ...] = ("gmail.com", "googlemail.com")


def normalize_email(col: Column, fold_gmail_dots_plus: bool = False) -> Column:
    """Trimmed lower-case address; malformed (not one '@', no dot in the domain) -> NULL.

    With ``fold_gmail_dots_plus`` Gmail addresses lose the dots and ``+tag`` of
    their local part and use ``gmail.com``: Gmail delivers all those spellings
    to one mailbox.
    """
    email = blank_to_null(F.lower(F.regexp_replace(col, _INVISIBLE, "")))
    valid = F.when(email.rlike(_EMAIL), email)
    if not fold_gmail_dots_plus:
        return valid
    local = F.substring_index(valid, "@", 1)
    domain = F.substring_index(valid, "@", -1)
    gmail_local = F.regexp_replace(F.regexp_replace(local, r"\+.*$", ""), r"\.", "")
    return F.when(is_in(domain, GMAIL_DOMAINS), F.concat(gmail_local, F.lit("@gmail.com"))).otherwise(valid)


_LETTERS = re.compile(r"[A-Za-z]")


def to_e164(number: str | None, region: str) -> str | None:
    """``number`` in E.164 (``'+442079460958'``), or None when it cannot be a full number.

    Letters are refused (``phonenumbers`` would read ``0800 FLOWERS`` as digits).
    A number must be possible for its region (right length, not local-only);
    it need not be in an allocated range, so reserved test ranges
    (``07700 900xxx``) are kept. It must have at least 7 digits.
    """
    if number is None or _LETTERS.search(number):
        return None
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return None
    if phonenumbers.is_possible_number_with_reason(parsed) != phonenumbers.ValidationResult.IS_POSSIBLE:
        return None
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    # Fewer than 7 digits (Iran's ``0812``: an area's short number) never reaches one person.
    return e164 if len(e164) >= 8 else None


def _e164(numbers: pd.Series, regions: pd.Series) -> pd.Series:
    return pd.Series([to_e164(number, region) for number, region in zip(numbers, regions)], dtype=object)


def normalize_phone(col: Column, default_region: str | Column, jvm_function: str | None = None) -> Column:
    """E.164 phone number, NULL when it is not a possible number.

    ``default_region`` (ISO2, or a column of them, e.g. the row's country)
    reads numbers written without a country code. ``jvm_function`` names the
    session's SQL function that computes ``to_e164`` in the JVM (cdi's jar,
    ``jvm/src/cdi/phone``; the same values without a Python worker); without
    one, ``to_e164`` runs in a pandas UDF.
    """
    region = F.lit(default_region) if isinstance(default_region, str) else default_region
    number = blank_to_null(col.cast("string"))
    if jvm_function is not None:
        return F.call_function(jvm_function, number, F.upper(region))
    # Made at each call, not at import: a UDF is bound to the kind of session (classic or Spark Connect)
    # there is when it is made, and modules are imported before the session is built.
    e164 = F.pandas_udf(_e164, StringType())  # type: ignore[call-overload]
    return e164(number, F.upper(region))
