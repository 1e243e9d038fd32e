"""Demo departmental sources with a known ground truth.

Writes four sources that describe the same synthetic people the way four
departments would (a sales CRM and a billing system in SQLite, a support-desk
CSV export, a webshop JSON-lines feed) and ``truth.csv``, which maps every
source row to the person it describes; and each department's activity of
those people with ``activity_truth.csv`` (``demo/activities.py``). The
evaluation reads the truth; the pipeline never does.

Each kind of noise (typos, nicknames, swapped names, formats, missing values,
moves, married names) and each hard non-match (twins, father and son,
namesakes, households) is one small function, so the data's difficulty can
be read and tuned here.

Everything derives from one ``random.Random(seed)`` and the fixed reference
date 2026-01-01, so a seed gives the same files byte for byte. Activity draws
from a stream of its own, so it leaves the customer sources unchanged. People
are generated and written in chunks, so memory stays flat for millions of rows.
"""

from __future__ import annotations

import csv
import random
import unicodedata
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from functools import lru_cache
from itertools import accumulate
from pathlib import Path
from typing import Any, TextIO

from demo import names as demo_names
from demo.activities import ActivityWriter, CustomerRow
from demo.layout import (
    BILLING,
    HISTORY_START,
    REFERENCE_TIME,
    SALES_CRM,
    SOURCE_NAMES,
    SUPPORT_DESK,
    WEBSHOP,
    CsvSink,
    JsonLinesSink,
    Sink,
    SqliteDatabase,
)

BIRTH_YEARS = (1940, 2005)
PEOPLE_PER_CHUNK = 5_000

# How many sources a person appears in (1..4): mean about 2.16 rows per
# person, 2.2 with the within-source duplicates below.
SOURCE_COUNT_WEIGHTS = (0.31, 0.34, 0.23, 0.12)
DUPLICATE_RATE = 0.04
DUPLICATE_SOURCE_WEIGHTS = (0.55, 0.15, 0.15, 0.15)

# Share of people with a history (a previous contact before a change).
MARRIED_NAME_RATE = 0.10  # of women born up to 1998
MOVED_RATE = 0.12
LANDLINE_RATE = 0.55
MOBILE_RATE = 0.92
MIDDLE_NAME_RATE = 0.35
SUFFIX_RATE = 0.005

# Hard non-matches: probability that the next group of people is one of these
# pairs instead of a single person.
TWINS_RATE = 0.01
FATHER_AND_SON_RATE = 0.01
NAMESAKES_RATE = 0.01
HOUSEHOLD_RATE = 0.02

CRM_COLUMNS = (
    ("contact_id", "INTEGER PRIMARY KEY"),
    ("first_name", "TEXT"),
    ("middle_name", "TEXT"),
    ("last_name", "TEXT"),
    ("date_of_birth", "TEXT"),
    ("gender", "TEXT"),
    ("email", "TEXT"),
    ("phone", "TEXT"),
    ("street", "TEXT"),
    ("city", "TEXT"),
    ("postcode", "TEXT"),
    ("country", "TEXT"),
    ("updated_at", "TEXT"),
)
BILLING_COLUMNS = (
    ("acct_no", "INTEGER PRIMARY KEY"),
    ("title", "TEXT"),
    ("forename", "TEXT"),
    ("surname", "TEXT"),
    ("birth_dt", "TEXT"),
    ("email_addr", "TEXT"),
    ("tel", "TEXT"),
    ("addr_1", "TEXT"),
    ("addr_2", "TEXT"),
    ("town", "TEXT"),
    ("post_code", "TEXT"),
    ("country_code", "TEXT"),
    ("last_modified", "TEXT"),
)
SUPPORT_COLUMNS = (
    "ticket_contact_id",
    "customer_name",
    "dob",
    "phone",
    "email",
    "city",
    "postcode",
    "last_contact",
)
TRUTH_COLUMNS = ("source_system", "source_key", "entity_id")

CRM_FILE = "sales_crm.db"
BILLING_FILE = "billing.db"
SUPPORT_FILE = "support_desk.csv"
WEBSHOP_FILE = "webshop_signups.jsonl"
TRUTH_FILE = "truth.csv"
BILLING_FIRST_ACCOUNT = 100_000


@dataclass(frozen=True)
class DemoSummary:
    out_dir: Path
    customers: int
    rows_per_source: dict[str, int]
    truth_path: Path
    rows_per_activity: dict[str, int]  # activity name as in conf/cdi.yaml -> rows
    activity_truth_path: Path


@dataclass(frozen=True)
class City:
    name: str
    postcode_areas: tuple[str, ...]
    first_district: int
    last_district: int
    area_code: str


@dataclass(frozen=True)
class Phone:
    """A UK number as dialled: trunk prefix with area code, then the local part."""

    area: str  # '020', '0161', '01274' or a mobile prefix '07700'
    local: str  # 8, 7 or 6 digits: area and local always make 11 digits

    @property
    def is_mobile(self) -> bool:
        return self.area.startswith("07")


@dataclass(frozen=True)
class Address:
    house_number: int
    street_name: str  # 'High'
    street_type: str  # 'Street'
    flat: int | None
    city: str
    postcode: str  # canonical form, 'SW1 2AB'


@dataclass(frozen=True)
class Contact:
    """The parts of a person that change when they move or marry."""

    family_name: str
    email: str
    address: Address
    landline: Phone | None


@dataclass(frozen=True)
class Person:
    """One real customer: the entity that every source row is a view of."""

    entity_id: str
    given_name: str
    middle_name: str | None
    gender: str  # 'M' or 'F'
    birth_date: date
    suffix: str | None  # 'Jr', 'Sr', 'III'
    mobile: Phone | None
    contact: Contact
    previous: Contact | None = None  # before a move or a marriage


@dataclass(frozen=True)
class Appearance:
    """One row a source holds for a person: when it was written, and what was true then."""

    source: str
    when: datetime
    contact: Contact


@dataclass(frozen=True)
class Observation:
    """What one source recorded about a person, after noise, before formatting."""

    given_name: str
    middle_name: str | None
    family_name: str
    suffix: str | None
    gender: str
    birth_date: date | None
    email: str | None
    mobile: Phone | None
    landline: Phone | None
    address: Address | None
    when: datetime


@dataclass(frozen=True)
class NoiseRates:
    """Per-record noise probabilities for one source."""

    nickname: float
    name_typo: float
    swap_names: float
    drop_accents: float
    upper_case: float
    lower_case: float
    missing_birth_date: float
    day_month_swap: float
    missing_email: float
    email_typo: float
    missing_phone: float
    missing_address: float


NOISE: dict[str, NoiseRates] = {
    SALES_CRM: NoiseRates(
        nickname=0.05, name_typo=0.03, swap_names=0.015, drop_accents=0.5,
        upper_case=0.08, lower_case=0.02, missing_birth_date=0.12,
        day_month_swap=0.01, missing_email=0.08, email_typo=0.015,
        missing_phone=0.12, missing_address=0.06,
    ),
    BILLING: NoiseRates(
        nickname=0.02, name_typo=0.02, swap_names=0.005, drop_accents=1.0,
        upper_case=0.25, lower_case=0.0, missing_birth_date=0.04,
        day_month_swap=0.005, missing_email=0.06, email_typo=0.01,
        missing_phone=0.08, missing_address=0.02,
    ),
    SUPPORT_DESK: NoiseRates(
        nickname=0.10, name_typo=0.04, swap_names=0.01, drop_accents=1.0,
        upper_case=0.03, lower_case=0.03, missing_birth_date=0.35,
        day_month_swap=0.02, missing_email=0.04, email_typo=0.02,
        missing_phone=0.20, missing_address=0.25,
    ),
    WEBSHOP: NoiseRates(
        nickname=0.12, name_typo=0.03, swap_names=0.02, drop_accents=0.1,
        upper_case=0.03, lower_case=0.08, missing_birth_date=0.30,
        day_month_swap=0.01, missing_email=0.0, email_typo=0.01,
        missing_phone=0.25, missing_address=0.10,
    ),
}


# --- word lists, weighted by rank --------------------------------------------


def rank_weights(count: int, offset: int) -> list[float]:
    """Cumulative Zipf-like weights: item r gets 1 / (r + offset)."""
    return list(accumulate(1.0 / (rank + offset) for rank in range(1, count + 1)))


CITIES = tuple(City(name, areas, first, last, code) for name, areas, first, last, code, _ in demo_names.CITIES)
CITY_BY_NAME = {city.name: city for city in CITIES}
CITY_WEIGHTS = list(accumulate(weight for *_, weight in demo_names.CITIES))
MALE_WEIGHTS = rank_weights(len(demo_names.MALE_GIVEN_NAMES), 15)
FEMALE_WEIGHTS = rank_weights(len(demo_names.FEMALE_GIVEN_NAMES), 15)
SURNAME_WEIGHTS = rank_weights(len(demo_names.SURNAMES), 10)
PROVIDERS = tuple(demo_names.EMAIL_PROVIDERS)
PROVIDER_WEIGHTS = list(accumulate(demo_names.EMAIL_PROVIDERS.values()))
STREET_TYPES = tuple(demo_names.STREET_TYPES)
POSTCODE_UNIT_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"
CITY_ALIASES = {
    "Newcastle upon Tyne": "Newcastle",
    "Stoke-on-Trent": "Stoke",
    "Hull": "Kingston upon Hull",
    "St Albans": "St. Albans",
}
KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
KEYBOARD_NEIGHBOURS = {
    row[i]: row[max(i - 1, 0)] + row[min(i + 1, len(row) - 1)]
    for row in KEYBOARD_ROWS
    for i in range(len(row))
}


def pick_given_name(rng: random.Random, gender: str) -> str:
    if gender == "M":
        return rng.choices(demo_names.MALE_GIVEN_NAMES, cum_weights=MALE_WEIGHTS)[0]
    return rng.choices(demo_names.FEMALE_GIVEN_NAMES, cum_weights=FEMALE_WEIGHTS)[0]


def pick_surname(rng: random.Random) -> str:
    return rng.choices(demo_names.SURNAMES, cum_weights=SURNAME_WEIGHTS)[0]


def pick_city(rng: random.Random) -> City:
    return rng.choices(CITIES, cum_weights=CITY_WEIGHTS)[0]


# --- people ------------------------------------------------------------------


class EmailRegistry:
    """Which email addresses are taken, in fixed memory.

    A one-hash bitmap (a Bloom filter with k=1). A false "taken" only makes
    the generator pick another address, so it is harmless, and memory stays
    at 8 MiB however many people are generated.
    """

    BITS = 1 << 26

    def __init__(self) -> None:
        self._bits = bytearray(self.BITS // 8)

    def claim(self, email: str) -> bool:
        """Mark the address taken; False if it (probably) already was."""
        slot = zlib.crc32(email.encode()) % self.BITS
        byte, bit = divmod(slot, 8)
        if self._bits[byte] >> bit & 1:
            return False
        self._bits[byte] |= 1 << bit
        return True


def random_date(rng: random.Random, first: date, last: date) -> date:
    return date.fromordinal(rng.randint(first.toordinal(), last.toordinal()))


def random_birth_date(rng: random.Random, first_year: int, last_year: int) -> date:
    return random_date(rng, date(first_year, 1, 1), date(last_year, 12, 31))


def make_mobile(rng: random.Random) -> Phone:
    return Phone(f"07{rng.choice('45789')}{rng.randrange(100):02d}", f"{rng.randrange(10**6):06d}")


def make_landline(rng: random.Random, city: City) -> Phone:
    digits = 11 - len(city.area_code)
    first_digit = rng.choice("23456789")
    return Phone(city.area_code, first_digit + f"{rng.randrange(10 ** (digits - 1)):0{digits - 1}d}")


def make_postcode(rng: random.Random, city: City) -> str:
    area = rng.choice(city.postcode_areas)
    district = rng.randint(city.first_district, city.last_district)
    unit = rng.choice(POSTCODE_UNIT_LETTERS) + rng.choice(POSTCODE_UNIT_LETTERS)
    return f"{area}{district} {rng.randrange(10)}{unit}"


def make_address(rng: random.Random, city: City) -> Address:
    return Address(
        house_number=rng.randint(1, 150),
        street_name=rng.choice(demo_names.STREET_NAMES),
        street_type=rng.choice(STREET_TYPES),
        flat=rng.randint(1, 30) if rng.random() < 0.15 else None,
        city=city.name,
        postcode=make_postcode(rng, city),
    )


@lru_cache(maxsize=8192)
def strip_accents(text: str) -> str:
    """'Zoë Müller' -> 'Zoe Muller', the way ASCII-only systems store names."""
    text = text.translate(str.maketrans({"ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "ß": "ss"}))
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def email_token(name: str) -> str:
    """A name as people write it in an email address: ASCII letters only."""
    return "".join(ch for ch in strip_accents(name).lower() if ch.isascii() and ch.isalpha())


def email_local_part(rng: random.Random, given: str, family: str, birth_year: int) -> str:
    first, last = email_token(given), email_token(family)
    local = rng.choice(
        (
            f"{first}.{last}",
            f"{first}{last}",
            f"{first[0]}.{last}",
            f"{first[0]}{last}",
            f"{first}_{last}",
            f"{last}.{first}",
            f"{first}{last[0]}",
        )
    )
    if rng.random() < 0.45:
        local += rng.choice((f"{birth_year % 100:02d}", str(birth_year), str(rng.randint(1, 99))))
    return local


def make_email(rng: random.Random, emails: EmailRegistry, given: str, family: str, birth_year: int) -> str:
    """A fresh address derived from the name; some people use their nickname."""
    if rng.random() < 0.1:
        given = nickname_of(rng, given) or given
    local = email_local_part(rng, given, family, birth_year)
    domain = rng.choices(PROVIDERS, cum_weights=PROVIDER_WEIGHTS)[0]
    email = f"{local}@{domain}"
    while not emails.claim(email):
        email = f"{local}{rng.randint(1, 9999)}@{domain}"
    return email


def make_contact(
    rng: random.Random, emails: EmailRegistry, given: str, family: str, birth_year: int, city: City
) -> Contact:
    return Contact(
        family_name=family,
        email=make_email(rng, emails, given, family, birth_year),
        address=make_address(rng, city),
        landline=make_landline(rng, city) if rng.random() < LANDLINE_RATE else None,
    )


def moved_from(rng: random.Random, current: Contact) -> Contact:
    """The contact a person had before moving: half moved within their city."""
    city = CITY_BY_NAME[current.address.city] if rng.random() < 0.5 else pick_city(rng)
    landline = make_landline(rng, city) if current.landline else None
    return replace(current, address=make_address(rng, city), landline=landline)


def maiden_contact(
    rng: random.Random, emails: EmailRegistry, given: str, birth_year: int, current: Contact
) -> tuple[Contact, Contact]:
    """(before, after) a marriage: new family name, often the same email, sometimes a move."""
    maiden_name = pick_surname(rng)
    while maiden_name == current.family_name:
        maiden_name = pick_surname(rng)
    maiden_email = make_email(rng, emails, given, maiden_name, birth_year)
    before = replace(current, family_name=maiden_name, email=maiden_email)
    if rng.random() < 0.6:
        before = moved_from(rng, before)
    if rng.random() < 0.6:
        current = replace(current, email=before.email)
    return before, current


def make_person(
    rng: random.Random,
    entity_id: str,
    emails: EmailRegistry,
    *,
    gender: str | None = None,
    given_name: str | None = None,
    family_name: str | None = None,
    city: City | None = None,
    birth_years: tuple[int, int] = BIRTH_YEARS,
    stable: bool = False,
) -> Person:
    """A random person; keyword arguments pin attributes for related people.

    ``stable`` people never moved or married, so relatives keep sharing an address.
    """
    gender = gender or rng.choice("MF")
    given_name = given_name or pick_given_name(rng, gender)
    family_name = family_name or pick_surname(rng)
    birth_date = random_birth_date(rng, *birth_years)
    contact = make_contact(rng, emails, given_name, family_name, birth_date.year, city or pick_city(rng))
    previous = None
    if not stable:
        draw = rng.random()
        if gender == "F" and birth_date.year <= 1998 and draw < MARRIED_NAME_RATE:
            previous, contact = maiden_contact(rng, emails, given_name, birth_date.year, contact)
        elif draw > 1 - MOVED_RATE:
            previous = moved_from(rng, contact)
    middle_name = pick_given_name(rng, gender) if rng.random() < MIDDLE_NAME_RATE else None
    suffix = rng.choice(("Jr", "III")) if gender == "M" and rng.random() < SUFFIX_RATE else None
    return Person(
        entity_id=entity_id,
        given_name=given_name,
        middle_name=middle_name,
        gender=gender,
        birth_date=birth_date,
        suffix=suffix,
        mobile=make_mobile(rng) if rng.random() < MOBILE_RATE else None,
        contact=contact,
        previous=previous,
    )


def shared_home(rng: random.Random, person: Person) -> Contact:
    """A person's contact with a landline, for relatives who share the home phone."""
    if person.contact.landline:
        return person.contact
    return replace(person.contact, landline=make_landline(rng, CITY_BY_NAME[person.contact.address.city]))


def make_twins(rng: random.Random, ids: Iterator[str], emails: EmailRegistry) -> list[Person]:
    """Same family name, birth date, address and landline; different given names."""
    first = make_person(rng, next(ids), emails, stable=True)
    gender = rng.choice("MF")
    given_name = pick_given_name(rng, gender)
    while given_name == first.given_name:
        given_name = pick_given_name(rng, gender)
    second = make_person(
        rng,
        next(ids),
        emails,
        gender=gender,
        given_name=given_name,
        family_name=first.contact.family_name,
        stable=True,
    )
    home = shared_home(rng, first)
    first = replace(first, contact=home)
    second = replace(
        second,
        birth_date=first.birth_date,
        contact=replace(second.contact, address=home.address, landline=home.landline),
    )
    return [first, second]


def make_father_and_son(rng: random.Random, ids: Iterator[str], emails: EmailRegistry) -> list[Person]:
    """Same given and family name and address, 20-35 years apart; 'Jr' / 'Sr' only sometimes."""
    father = make_person(rng, next(ids), emails, gender="M", birth_years=(1940, 1970), stable=True)
    son_born = father.birth_date.year + rng.randint(20, 35)
    son = make_person(
        rng,
        next(ids),
        emails,
        gender="M",
        given_name=father.given_name,
        family_name=father.contact.family_name,
        birth_years=(son_born, son_born),
        stable=True,
    )
    home = shared_home(rng, father)
    son_suffix = "Jr" if rng.random() < 0.5 else None
    father_suffix = "Sr" if son_suffix and rng.random() < 0.6 else None
    father = replace(father, suffix=father_suffix, contact=home)
    son = replace(
        son, suffix=son_suffix, contact=replace(son.contact, address=home.address, landline=home.landline)
    )
    return [father, son]


def make_namesakes(rng: random.Random, ids: Iterator[str], emails: EmailRegistry) -> list[Person]:
    """Same given and family name in the same city; otherwise different people."""
    first = make_person(rng, next(ids), emails)
    second = make_person(
        rng,
        next(ids),
        emails,
        gender=first.gender,
        given_name=first.given_name,
        family_name=first.contact.family_name,
        city=CITY_BY_NAME[first.contact.address.city],
    )
    return [first, second]


def make_household(rng: random.Random, ids: Iterator[str], emails: EmailRegistry) -> list[Person]:
    """Spouses sharing one email, address and landline; often the same family name."""
    first = make_person(rng, next(ids), emails, stable=True)
    year = first.birth_date.year
    second = make_person(
        rng,
        next(ids),
        emails,
        gender="F" if first.gender == "M" else "M",
        family_name=first.contact.family_name if rng.random() < 0.7 else None,
        birth_years=(max(year - 8, BIRTH_YEARS[0]), min(year + 8, BIRTH_YEARS[1])),
        stable=True,
    )
    home = shared_home(rng, first)
    first = replace(first, contact=home)
    second = replace(
        second,
        contact=replace(second.contact, email=home.email, address=home.address, landline=home.landline),
    )
    return [first, second]


PersonGroup = Callable[[random.Random, Iterator[str], EmailRegistry], list[Person]]
HARD_CASES: tuple[tuple[float, PersonGroup], ...] = (
    (TWINS_RATE, make_twins),
    (FATHER_AND_SON_RATE, make_father_and_son),
    (NAMESAKES_RATE, make_namesakes),
    (HOUSEHOLD_RATE, make_household),
)


def make_group(rng: random.Random, ids: Iterator[str], emails: EmailRegistry) -> list[Person]:
    """Usually one person; sometimes a pair that a naive matcher would merge."""
    draw = rng.random()
    for rate, make_pair in HARD_CASES:
        if draw < rate:
            return make_pair(rng, ids, emails)
        draw -= rate
    return [make_person(rng, next(ids), emails)]


def generate_people(rng: random.Random, customers: int) -> Iterator[Person]:
    """Exactly ``customers`` people, ids E0000001 upwards, lazily."""
    ids = (f"E{number:07d}" for number in range(1, customers + 1))
    emails = EmailRegistry()
    produced = 0
    while produced < customers:
        if customers - produced >= 2:
            group = make_group(rng, ids, emails)
        else:
            group = [make_person(rng, next(ids), emails)]
        produced += len(group)
        yield from group


# --- where and when people appear -------------------------------------------


def random_timestamp(rng: random.Random, birth_date: date) -> datetime:
    """A record time in 2018-2025, not before the person turned 16."""
    start = max(HISTORY_START, datetime(birth_date.year + 16, 1, 1))
    span = int((REFERENCE_TIME - start).total_seconds())
    return start + timedelta(seconds=rng.randrange(span))


def plan_appearances(rng: random.Random, person: Person) -> list[Appearance]:
    """The source rows a person has, oldest first.

    A person with a history shows the previous contact in the older rows and
    the current one in the newer rows, so both versions reach the data.
    """
    count = rng.choices((1, 2, 3, 4), weights=SOURCE_COUNT_WEIGHTS)[0]
    sources = rng.sample(SOURCE_NAMES, count)
    if rng.random() < DUPLICATE_RATE:
        sources.append(rng.choices(SOURCE_NAMES, weights=DUPLICATE_SOURCE_WEIGHTS)[0])
    times = sorted(random_timestamp(rng, person.birth_date) for _ in sources)
    if person.previous is None:
        changed_after = len(sources)
    elif len(sources) == 1:
        changed_after = rng.randint(0, 1)
    else:
        changed_after = rng.randint(1, len(sources) - 1)
    return [
        Appearance(source, when, person.previous if i < changed_after and person.previous else person.contact)
        for i, (source, when) in enumerate(zip(sources, times))
    ]


# --- noise -------------------------------------------------------------------


def nickname_of(rng: random.Random, given_name: str) -> str | None:
    """A common short form ('Robert' -> 'Bob'), or None if the name has none."""
    short_forms = demo_names.NICKNAMES.get(given_name)
    return rng.choice(short_forms) if short_forms else None


def add_typo(rng: random.Random, text: str) -> str:
    """One keyboard slip: insert, delete, substitute or transpose one character.

    The first character is kept: people rarely mistype it.
    """
    if len(text) < 3:
        return text
    i = rng.randrange(1, len(text) - 1)
    kind = rng.randrange(4)
    neighbour = rng.choice(KEYBOARD_NEIGHBOURS.get(text[i].lower(), "aeiou"))
    if kind == 0:
        return text[:i] + neighbour + text[i:]
    if kind == 1:
        return text[:i] + text[i + 1 :]
    if kind == 2:
        return text[:i] + neighbour + text[i + 1 :]
    return text[:i] + text[i + 1] + text[i] + text[i + 2 :]


def typo_email(rng: random.Random, email: str) -> str:
    """A misspelt domain ('gmial.com') or a slip in the local part."""
    local, domain = email.split("@")
    if domain in demo_names.EMAIL_DOMAIN_TYPOS and rng.random() < 0.5:
        return f"{local}@{demo_names.EMAIL_DOMAIN_TYPOS[domain]}"
    return f"{add_typo(rng, local)}@{domain}"


def swap_day_month(birth_date: date) -> date:
    """The classic US/UK mix-up; only possible when the day is a valid month."""
    if birth_date.day > 12 or birth_date.day == birth_date.month:
        return birth_date
    return date(birth_date.year, birth_date.day, birth_date.month)


def pick_case(rng: random.Random, rates: NoiseRates) -> Callable[[str], str]:
    """How a record's free text is cased: as typed, UPPER (legacy screens) or lower."""
    draw = rng.random()
    if draw < rates.upper_case:
        return str.upper
    if draw < rates.upper_case + rates.lower_case:
        return str.lower
    return str


def noisy_names(rng: random.Random, given: str, family: str, rates: NoiseRates) -> tuple[str, str]:
    if rng.random() < rates.nickname:
        given = nickname_of(rng, given) or given
    if rng.random() < rates.name_typo:
        given = add_typo(rng, given)
    if rng.random() < rates.name_typo:
        family = add_typo(rng, family)
    if rng.random() < rates.drop_accents:
        given, family = strip_accents(given), strip_accents(family)
    if rng.random() < rates.swap_names:
        given, family = family, given
    return given, family


def noisy_birth_date(rng: random.Random, birth_date: date, rates: NoiseRates) -> date | None:
    if rng.random() < rates.missing_birth_date:
        return None
    if rng.random() < rates.day_month_swap:
        return swap_day_month(birth_date)
    return birth_date


def noisy_email(rng: random.Random, email: str, rates: NoiseRates) -> str | None:
    if rng.random() < rates.missing_email:
        return None
    if rng.random() < rates.email_typo:
        return typo_email(rng, email)
    return email


def noisy_address(
    rng: random.Random, address: Address, rates: NoiseRates, case: Callable[[str], str]
) -> Address | None:
    if rng.random() < rates.missing_address:
        return None
    return replace(
        address,
        street_name=case(address.street_name),
        street_type=case(address.street_type),
        city=case(address.city),
    )


def observe(rng: random.Random, person: Person, appearance: Appearance) -> Observation:
    """Apply the appearance's source noise to what was true about the person then."""
    rates = NOISE[appearance.source]
    case = pick_case(rng, rates)
    given, family = noisy_names(rng, person.given_name, appearance.contact.family_name, rates)
    middle = person.middle_name
    if middle and rng.random() < rates.drop_accents:
        middle = strip_accents(middle)
    return Observation(
        given_name=case(given),
        middle_name=case(middle) if middle else None,
        family_name=case(family),
        suffix=person.suffix,
        gender=person.gender,
        birth_date=noisy_birth_date(rng, person.birth_date, rates),
        email=noisy_email(rng, appearance.contact.email, rates),
        mobile=None if rng.random() < rates.missing_phone else person.mobile,
        landline=None if rng.random() < rates.missing_phone else appearance.contact.landline,
        address=noisy_address(rng, appearance.contact.address, rates, case),
        when=appearance.when,
    )


# --- formats -----------------------------------------------------------------


def group_local(local: str, separator: str = " ") -> str:
    """'79460958' -> '7946 0958', '4960000' -> '496 0000'; six digits stay whole."""
    if len(local) == 8:
        return local[:4] + separator + local[4:]
    if len(local) == 7:
        return local[:3] + separator + local[3:]
    return local


def phone_national(phone: Phone) -> str:
    return f"{phone.area} {group_local(phone.local)}"  # '020 7946 0958'


def phone_international(phone: Phone) -> str:
    return f"+44 {phone.area[1:]} {group_local(phone.local)}"  # '+44 7700 900123'


def phone_bracketed(phone: Phone) -> str:
    return f"({phone.area}) {group_local(phone.local)}"  # '(0161) 496 0000'


def phone_digits(phone: Phone) -> str:
    return phone.area + phone.local  # '07700900123'


def phone_e164(phone: Phone) -> str:
    return f"+44{phone.area[1:]}{phone.local}"  # '+447700900123'


def pick_phone(rng: random.Random, obs: Observation, mobile_share: float) -> Phone | None:
    """The one number a single-phone field holds: the mobile or the landline."""
    preferred, other = (obs.mobile, obs.landline) if rng.random() < mobile_share else (obs.landline, obs.mobile)
    return preferred or other


def format_phone_crm(rng: random.Random, phone: Phone) -> str:
    if phone.is_mobile:
        return rng.choice((phone_national, phone_national, phone_international))(phone)
    return rng.choice((phone_national, phone_national, phone_bracketed, phone_international))(phone)


def format_phone_billing(rng: random.Random, phone: Phone) -> str:
    return rng.choice((phone_digits, phone_digits, phone_national, phone_e164))(phone)


def format_phone_support(rng: random.Random, phone: Phone) -> str:
    """US-style punctuation from the support tool: '(020) 7946-0958', '020-7946-0958'."""
    bracketed = f"({phone.area}) {group_local(phone.local, '-')}"
    if phone.is_mobile:
        bracketed = f"{phone.area} {phone.local}"
    styles = (
        bracketed,
        f"+44 (0){phone.area[1:]} {group_local(phone.local)}",
        f"{phone.area}-{group_local(phone.local, '-')}",
    )
    return rng.choice(styles)


def format_phone_webshop(rng: random.Random, phone: Phone) -> str:
    return phone_e164(phone) if rng.random() < 0.6 else phone_digits(phone)


def format_postcode_messy(rng: random.Random, postcode: str) -> str:
    """Hand-typed postcodes: 'SW1 2AB', 'sw1 2ab', 'SW12AB', 'sw12ab'."""
    draw = rng.random()
    if draw < 0.6:
        return postcode
    if draw < 0.75:
        return postcode.lower()
    if draw < 0.9:
        return postcode.replace(" ", "")
    return postcode.replace(" ", "").lower()


def same_case_as(text: str, model: str) -> str:
    """``text`` in the case of ``model``, so added words match an UPPER or lower record."""
    if model.isupper():
        return text.upper()
    if model.islower():
        return text.lower()
    return text


def street_line(address: Address, abbreviate: bool) -> str:
    """'12 High Street', or '12 High St.' as some systems abbreviate it."""
    street_type = address.street_type
    if abbreviate:
        abbreviation = demo_names.STREET_TYPES.get(street_type.title(), street_type)
        street_type = same_case_as(abbreviation, street_type)
    return f"{address.house_number} {address.street_name} {street_type}"


def flat_line(address: Address) -> str | None:
    return f"Flat {address.flat}" if address.flat else None


def city_name(rng: random.Random, city: str) -> str:
    """The city as a person writes it: sometimes a short or long form."""
    alias = CITY_ALIASES.get(city)
    return alias if alias and rng.random() < 0.3 else city


def title_for(rng: random.Random, gender: str) -> str | None:
    draw = rng.random()
    if draw < 0.12:
        return None
    if draw < 0.16:
        return "Dr"
    if gender == "M":
        return "Mr"
    return rng.choice(("Mrs", "Mrs", "Ms", "Miss"))


def iso_date(value: date | None) -> str | None:
    return value.isoformat() if value else None


def crm_row(rng: random.Random, obs: Observation) -> tuple[Any, ...]:
    address = obs.address
    street = None
    if address:
        street = street_line(address, abbreviate=rng.random() < 0.1)
        if address.flat:
            street = f"{flat_line(address)}, {street}"
    phone = pick_phone(rng, obs, mobile_share=0.65)
    gender = None
    if rng.random() > 0.15:
        gender = obs.gender if rng.random() < 0.6 else {"M": "Male", "F": "Female"}[obs.gender]
    return (
        obs.given_name,
        obs.middle_name if rng.random() < 0.25 else None,
        obs.family_name,
        iso_date(obs.birth_date),
        gender,
        obs.email,
        format_phone_crm(rng, phone) if phone else None,
        street,
        city_name(rng, address.city) if address else None,
        format_postcode_messy(rng, address.postcode) if address else None,
        rng.choice(("United Kingdom", "United Kingdom", "UK", "GB")),
        obs.when.strftime("%Y-%m-%d %H:%M:%S"),
    )


def billing_row(rng: random.Random, obs: Observation) -> tuple[Any, ...]:
    address = obs.address
    surname = obs.family_name
    if obs.suffix and rng.random() < 0.7:
        surname = f"{surname} {same_case_as(obs.suffix, surname)}"
    phone = pick_phone(rng, obs, mobile_share=0.4)
    return (
        title_for(rng, obs.gender),
        obs.given_name,
        surname,
        obs.birth_date.strftime("%d/%m/%Y") if obs.birth_date else None,
        obs.email,
        format_phone_billing(rng, phone) if phone else None,
        street_line(address, abbreviate=rng.random() < 0.7) if address else None,
        flat_line(address) if address else None,
        (address.city.upper() if rng.random() < 0.4 else address.city) if address else None,
        address.postcode if address else None,
        "GB",
        obs.when.strftime("%Y-%m-%dT%H:%M:%S"),
    )


def support_customer_name(rng: random.Random, obs: Observation) -> str:
    """One full-name field, typed in whichever form the agent heard it."""
    given, family = obs.given_name, obs.family_name
    if obs.suffix and rng.random() < 0.5:
        family = f"{family} {same_case_as(obs.suffix, family)}"
    initial = f"{obs.middle_name[0]}. " if obs.middle_name else ""
    draw = rng.random()
    if draw < 0.55:
        return f"{given} {family}"
    if draw < 0.7:
        return f"{family.upper()}, {given}"
    if draw < 0.78:
        return f"{family}, {given}"
    if draw < 0.9:
        return f"{given} {initial}{family}"
    title = title_for(rng, obs.gender) or ("Mr" if obs.gender == "M" else "Ms")
    return f"{title}. {given} {initial}{family}"


def support_row(rng: random.Random, obs: Observation) -> tuple[Any, ...]:
    address = obs.address
    phone = pick_phone(rng, obs, mobile_share=0.5)
    postcode = ""
    if address and rng.random() < 0.85:
        postcode = address.postcode if rng.random() < 0.7 else address.postcode.replace(" ", "")
    return (
        support_customer_name(rng, obs),
        obs.birth_date.strftime("%m/%d/%Y") if obs.birth_date else "",
        format_phone_support(rng, phone) if phone else "",
        obs.email or "",
        city_name(rng, address.city) if address else "",
        postcode,
        obs.when.strftime("%Y-%m-%dT%H:%M:%SZ"),
    )


def webshop_row(rng: random.Random, obs: Observation) -> dict[str, Any]:
    """A signup as the webshop API logged it; an unknown birthday is null or left out."""
    row: dict[str, Any] = {"given_name": obs.given_name, "family_name": obs.family_name}
    if obs.birth_date or rng.random() < 0.5:
        row["birthday"] = iso_date(obs.birth_date)
    row["email"] = obs.email
    row["mobile"] = format_phone_webshop(rng, obs.mobile) if obs.mobile else None
    address = obs.address
    row["address"] = None
    if address:
        row["address"] = {
            "line1": street_line(address, abbreviate=rng.random() < 0.2),
            "line2": flat_line(address),
            "city": city_name(rng, address.city),
            "postcode": address.postcode if rng.random() < 0.8 else address.postcode.lower(),
            "country": rng.choice(("GB", "GB", "United Kingdom", "UK")),
        }
    row["created_at"] = obs.when.strftime("%Y-%m-%dT%H:%M:%S")
    return row


ROW_FORMATTERS: dict[str, Callable[[random.Random, Observation], Any]] = {
    SALES_CRM: crm_row,
    BILLING: billing_row,
    SUPPORT_DESK: support_row,
    WEBSHOP: webshop_row,
}


@dataclass(frozen=True)
class SourceRow:
    source: str
    entity_id: str
    values: Any  # a tuple of column values without the key, or a JSON object
    when: datetime  # when the source wrote the row


def source_rows(rng: random.Random, person: Person) -> list[SourceRow]:
    rows = []
    for appearance in plan_appearances(rng, person):
        obs = observe(rng, person, appearance)
        values = ROW_FORMATTERS[appearance.source](rng, obs)
        rows.append(SourceRow(appearance.source, person.entity_id, values, appearance.when))
    return rows


# --- writers -----------------------------------------------------------------


def open_databases(out_dir: Path, stack: ExitStack) -> dict[str, SqliteDatabase]:
    """The SQLite files of the sales CRM and billing, committed and closed when ``stack`` exits."""
    databases = {SALES_CRM: SqliteDatabase(out_dir / CRM_FILE), BILLING: SqliteDatabase(out_dir / BILLING_FILE)}
    for database in databases.values():
        stack.callback(database.close)
    return databases


def open_sinks(out_dir: Path, databases: dict[str, SqliteDatabase], stack: ExitStack) -> dict[str, Sink]:
    """The four customer sources; support keys are 'SUP-000123', webshop ids a bijection of the row number."""
    support = CsvSink(out_dir / SUPPORT_FILE, SUPPORT_COLUMNS, key_of=lambda n: f"SUP-{n:06d}")
    webshop = JsonLinesSink(out_dir / WEBSHOP_FILE, "signup_id", key_of=lambda n: f"W-{(n * 2654435761) % 2**32:08x}")
    stack.callback(support.close)
    stack.callback(webshop.close)
    return {
        SALES_CRM: databases[SALES_CRM].table("crm_contacts", CRM_COLUMNS, key_of=lambda n: n),
        BILLING: databases[BILLING].table(
            "billing_accounts", BILLING_COLUMNS, key_of=lambda n: BILLING_FIRST_ACCOUNT + n - 1
        ),
        SUPPORT_DESK: support,
        WEBSHOP: webshop,
    }


def chunked(items: Iterable[Person], size: int) -> Iterator[list[Person]]:
    chunk: list[Person] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def write_rows(rows: list[SourceRow], sinks: dict[str, Sink], truth: Any) -> list[CustomerRow]:
    """Write the rows and their truth; the rows as written, with their keys, for their activity."""
    written = []
    for row in rows:
        key = sinks[row.source].add(row.values)
        truth.writerow((row.source, key, row.entity_id))
        written.append(CustomerRow(row.source, key, row.entity_id, row.when))
    return written


def generate(out_dir: Path, customers: int = 1000, seed: int = 42) -> DemoSummary:
    """Write the four demo sources, their activity and both truths for ``customers`` people into ``out_dir``.

    Rows are shuffled within each chunk of people, so a person's rows are
    not adjacent and keys carry no hint of who is who.
    """
    if customers < 1:
        raise ValueError(f"customers must be at least 1, got {customers}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    truth_path = out_dir / TRUTH_FILE
    with ExitStack() as stack:
        databases = open_databases(out_dir, stack)
        sinks = open_sinks(out_dir, databases, stack)
        activity = ActivityWriter(
            out_dir, databases, {name: sink.key_of for name, sink in sinks.items()}, seed, stack
        )
        truth_file: TextIO = stack.enter_context(truth_path.open("w", encoding="utf-8", newline=""))
        truth = csv.writer(truth_file)
        truth.writerow(TRUTH_COLUMNS)
        for people in chunked(generate_people(rng, customers), PEOPLE_PER_CHUNK):
            rows = [row for person in people for row in source_rows(rng, person)]
            rng.shuffle(rows)
            activity.add(write_rows(rows, sinks, truth))
        rows_per_source = {name: sink.rows for name, sink in sinks.items()}
    return DemoSummary(
        out_dir=out_dir,
        customers=customers,
        rows_per_source=rows_per_source,
        truth_path=truth_path,
        rows_per_activity=activity.rows(),
        activity_truth_path=activity.truth_path,
    )
