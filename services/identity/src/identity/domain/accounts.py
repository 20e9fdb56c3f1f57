"""Identity rules as plain code: input checks, SSN format, usernames, password policy.

No I/O here. Reasons given to callers never repeat the value they judge, so an
SSN or a password cannot leak through an error message.
"""

from __future__ import annotations

import random
import re
import secrets
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Literal

from email_validator import EmailNotValidError, validate_email

from identity.domain.passwords import LockoutPolicy as LockoutPolicy
from identity.domain.records import QUERY_REASON

if TYPE_CHECKING:  # the type only: the domain's account rules do not run the matcher
    from identity.domain.matching import Match
from shared.rules.dates import MAX_AGE_YEARS as MAX_AGE_YEARS
from shared.rules.dates import date_of_birth_reason
from shared.rules.ssn import SSN_FORMAT_REASON as SSN_FORMAT_REASON
from shared.rules.ssn import SSN_UNISSUED_REASON as SSN_UNISSUED_REASON
from shared.rules.ssn import normalize_ssn as normalize_ssn
from shared.rules.text import CONTROL_REASON, has_control_characters

# re-exported: the service's modules take them from here
from shared.servicekit.errors import DomainError as DomainError
from shared.servicekit.errors import FieldError as FieldError
from shared.servicekit.errors import InvalidInput as InvalidInput

# --- SSN -------------------------------------------------------------------------



def ssn_last4(digits: str) -> str:
    """The last four digits, the only part of an SSN ever shown."""
    return normalize_ssn(digits)[-4:]


# --- Customer input --------------------------------------------------------------

NAME_MAX = 100


@dataclass(frozen=True)
class CustomerInput:
    """Cleaned customer fields; ``ssn`` is nine digits and kept out of the repr."""

    first_name: str
    last_name: str
    date_of_birth: date | None
    email: str | None
    ssn: str | None = field(default=None, repr=False)


def _clean_name(value: str) -> tuple[str, str | None]:
    name = unicodedata.normalize("NFC", value.strip())
    if not name:
        return name, "is required"
    if len(name) > NAME_MAX:
        return name, f"must be at most {NAME_MAX} characters"
    if has_control_characters(name):
        return name, CONTROL_REASON
    return name, None


# Plain ASCII addresses (dot-atom local part, letters-digits-hyphens domain): the
# common case, checked here with the domain's verdict from email-validator cached.
_PLAIN_EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@((?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,63})"
)


@lru_cache(maxsize=4096)
def _domain_accepted(domain: str) -> bool:
    try:
        validate_email(f"a@{domain}", check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


def normalize_email(raw: str) -> str:
    """A syntactically valid address, lower-cased; ValueError (not echoing it) otherwise.

    email-validator judges every address; for a plain ASCII one only its domain is
    handed to it, once per domain (bulk imports check millions of addresses).
    """
    text = raw.strip()
    plain = _PLAIN_EMAIL.fullmatch(text)
    if plain and len(text) <= 254 and text.index("@") <= 64:
        if _domain_accepted(plain.group(1).lower()):
            return text.lower()
        raise ValueError("is not a valid email address")
    try:
        checked = validate_email(text, check_deliverability=False)
    except EmailNotValidError:
        raise ValueError("is not a valid email address") from None
    return checked.normalized.lower()


def validate_customer(
    first_name: str,
    last_name: str,
    date_of_birth: date | None,
    email: str | None,
    ssn: str | None,
    *,
    today: date,
    require_dob: bool = True,
) -> CustomerInput:
    """Clean a customer's fields or raise InvalidInput naming every bad one.

    A blank email or SSN counts as absent.
    """
    errors: list[FieldError] = []
    first, reason = _clean_name(first_name)
    if reason:
        errors.append(FieldError("first_name", reason))
    last, reason = _clean_name(last_name)
    if reason:
        errors.append(FieldError("last_name", reason))

    if date_of_birth is None:
        if require_dob:
            errors.append(FieldError("date_of_birth", "is required"))
    elif (reason := date_of_birth_reason(date_of_birth, today)) is not None:
        errors.append(FieldError("date_of_birth", reason))

    clean_email: str | None = None
    if email is not None and email.strip():
        try:
            clean_email = normalize_email(email)
        except ValueError as exc:
            errors.append(FieldError("email", str(exc)))

    clean_ssn: str | None = None
    if ssn is not None and ssn.strip():
        try:
            clean_ssn = normalize_ssn(ssn)
        except ValueError as exc:
            errors.append(FieldError("ssn", str(exc)))

    if errors:
        raise InvalidInput(errors)
    return CustomerInput(first, last, date_of_birth, clean_email, clean_ssn)


# --- Other identifiers -----------------------------------------------------------

IDENTIFIER_KINDS = frozenset({"idoc_number", "iwds_person_id"})
_IDOC = re.compile(r"[A-Za-z][0-9]{5}")
_IWDS_PERSON = re.compile(r"[0-9]{1,20}")


def normalize_identifier(kind: str, value: str) -> str:
    """The stored form of an identifier (IDOC ``R12345``, IWDS ``1..20 digits``)."""
    text = value.strip()
    if kind == "idoc_number":
        if not _IDOC.fullmatch(text):
            raise ValueError("must be one letter followed by five digits")
        return text.upper()
    if kind == "iwds_person_id":
        if not _IWDS_PERSON.fullmatch(text):
            raise ValueError("must be 1 to 20 digits")
        return text
    raise ValueError("is not a known identifier kind")


# --- Usernames, roles, statuses --------------------------------------------------

USERNAME_MIN, USERNAME_MAX = 3, 40
_USERNAME = re.compile(rf"[A-Za-z0-9._-]{{{USERNAME_MIN},{USERNAME_MAX}}}")
STAFF_ROLES = frozenset({"admin", "staff", "reentry"})
AccountStatus = Literal["active", "locked", "disabled"]
ACCOUNT_STATUSES: frozenset[str] = frozenset({"active", "locked", "disabled"})


# Letters that do not decompose into an ASCII letter plus accents.
_TRANSLITERATE = str.maketrans(
    {"ß": "ss", "æ": "ae", "ø": "o", "œ": "oe", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "ı": "i"}
)


def _ascii_letters(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower().translate(_TRANSLITERATE))
    return "".join(c for c in decomposed.lower() if "a" <= c <= "z")


def username_candidates(
    first: str, last: str, rng: random.Random | None = None, *, widen_after: int | None = None
) -> Iterator[str]:
    """Endless distinct usernames like ``jsmith4821`` for the caller to try in turn.

    First initial and last name (at most 12 letters), accents stripped, other
    characters dropped; the first name alone, or ``user``, when a name has no
    ASCII letters. Four random digits, widened by one when half of the numbers
    of the current width have been offered, or after ``widen_after`` offers
    (bulk imports: a crowded name such as jsmith moves on to five digits fast).
    """
    rand = rng if rng is not None else random.SystemRandom()
    first_part, last_part = _ascii_letters(first), _ascii_letters(last)[:12]
    if last_part:
        base = first_part[:1] + last_part
    elif first_part:
        base = first_part[:13]
    else:
        base = "user"
    width, offered = 4, 0
    seen: set[str] = set()
    while True:
        if offered >= (widen_after or 9 * 10 ** (width - 1) // 2):
            width, offered = width + 1, 0
        candidate = f"{base}{rand.randrange(10 ** (width - 1), 10**width)}"
        if candidate not in seen:
            seen.add(candidate)
            offered += 1
            yield candidate


def validate_username(username: str) -> str:
    """3-40 characters of ``a-z 0-9 . _ -``; returned lower-case (usernames ignore case)."""
    text = username.strip()
    if not _USERNAME.fullmatch(text):
        raise ValueError(
            f"must be {USERNAME_MIN} to {USERNAME_MAX} characters of letters, digits, '.', '_', '-'"
        )
    return text.lower()


# --- Passwords (NIST SP 800-63B-4) ------------------------------------------------

PASSWORD_MIN = 15
PASSWORD_MAX = 256


@cache
def common_passwords() -> frozenset[str]:
    """zxcvbn's shipped list of the 30,000 most common passwords, lower-cased."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS  # type: ignore[import-untyped]

    return frozenset(str(p).lower() for p in FREQUENCY_LISTS["passwords"])


def _repeats_short_unit(text: str) -> bool:
    """True for ``aaaa...``, ``abcabc...`` or a common password written several times."""
    for size in range(1, len(text) // 2 + 1):
        unit = text[:size]
        if (unit * (len(text) // size + 1)).startswith(text):
            return size <= 4 or unit in common_passwords()
    return False


def check_password(password: str, *, username: str, names: Sequence[str]) -> list[str]:
    """Reasons the password is refused; empty when it is acceptable.

    Length counts code points after NFKC normalisation. There are no composition
    rules. Refused: too short or long, in zxcvbn's common-password list (or a short
    pattern repeated), or containing the username or a name of 3+ characters.
    """
    text = unicodedata.normalize("NFKC", password)
    folded = text.casefold()
    reasons: list[str] = []
    if len(text) < PASSWORD_MIN:
        reasons.append(f"must be at least {PASSWORD_MIN} characters")
    if len(text) > PASSWORD_MAX:
        reasons.append(f"must be at most {PASSWORD_MAX} characters")
    if any(unicodedata.category(c) == "Cs" for c in text):
        reasons.append("must not contain unpaired surrogate characters")
    if folded in common_passwords() or (folded and _repeats_short_unit(folded)):
        reasons.append("is too common or too easy to guess")
    user = unicodedata.normalize("NFKC", username).strip().casefold()
    if len(user) >= 3 and user in folded:
        reasons.append("must not contain your username")
    for name in names:
        part = unicodedata.normalize("NFKC", name).strip().casefold()
        if len(part) >= 3 and part in folded:
            reasons.append("must not contain your name")
            break
    return reasons


# No 0/O, 1/l/I. Letters and digits alternate, so a password never holds three
# letters in a row (no name) nor two digits in a row (no generated username).
TEMP_LETTERS = "ABCDEFGHJKMNPQRSTUVWXYZ"
TEMP_DIGITS = "23456789"


def generate_temporary_password(rng: random.Random | None = None) -> str:
    """A system-chosen password to write down, e.g. ``K7M4-R2T9-X3A8-H5P6`` (19 chars).

    Four groups of letter-digit-letter-digit: about 60 bits from the OS generator.
    """
    rand = rng if rng is not None else secrets.SystemRandom()
    while True:
        groups = [
            "".join(rand.choice(TEMP_LETTERS) + rand.choice(TEMP_DIGITS) for _ in range(2))
            for _ in range(4)
        ]
        candidate = "-".join(groups)
        if not check_password(candidate, username="", names=()):
            return candidate


# --- Sign-in throttling ------------------------------------------------------------


# --- Match queries ---------------------------------------------------------------


@dataclass(frozen=True)
class MatchFields:
    """A person as staff typed them for a search; every field optional."""

    first_name: str | None = None
    last_name: str | None = None
    date_of_birth: date | None = None
    ssn: str | None = field(default=None, repr=False)
    idoc_number: str | None = None
    email: str | None = None


def clean_match_fields(q: MatchFields, *, today: date) -> MatchFields:
    """Normalised fields, or InvalidInput naming each bad one (values never echoed).

    Blank strings count as absent. At least an SSN, an identifier, or two of first
    name, last name and date of birth are needed (the field is then ``query``).
    """
    errors: list[FieldError] = []

    def text(name: str, raw: str | None) -> str | None:
        if raw is None or not raw.strip():
            return None
        value, reason = _clean_name(raw)
        if reason:
            errors.append(FieldError(name, reason))
        return value

    def normalised(name: str, raw: str | None, clean: Callable[[str], str]) -> str | None:
        if raw is None or not raw.strip():
            return None
        try:
            return clean(raw)
        except ValueError as exc:
            errors.append(FieldError(name, str(exc)))
            return None

    first, last = text("first_name", q.first_name), text("last_name", q.last_name)
    dob = q.date_of_birth
    if dob is not None and dob > today:
        errors.append(FieldError("date_of_birth", "must not be in the future"))
    ssn = normalised("ssn", q.ssn, normalize_ssn)
    idoc = normalised(
        "idoc_number", q.idoc_number, lambda v: normalize_identifier("idoc_number", v)
    )
    email = normalised("email", q.email, normalize_email)
    if errors:
        raise InvalidInput(errors)
    if not (ssn or idoc or email) and sum(x is not None for x in (first, last, dob)) < 2:
        raise InvalidInput([FieldError("query", QUERY_REASON)])
    return MatchFields(first, last, dob, ssn, idoc, email)


SEARCH_REASON = (
    "is required: a search names the person (first name, last name and date of birth)"
    " or gives their IDOC number; an SSN or an email does not stand in for them"
)


def clean_search_fields(q: MatchFields, *, today: date) -> MatchFields:
    """``clean_match_fields`` for a search staff (or a machine client) make: it must
    name the person, first and last name and date of birth, or give an IDOC number.
    An SSN alone, or with part of a name, is refused (InvalidInput naming each
    missing field): a search that answers how near an SSN is to a person's would
    let guesses at the number be checked one by one."""
    def given(value: object) -> bool:
        return value is not None and (not isinstance(value, str) or bool(value.strip()))

    missing = [] if given(q.idoc_number) else [
        FieldError(name, SEARCH_REASON)
        for name in ("first_name", "last_name", "date_of_birth")
        if not given(getattr(q, name))]
    try:
        clean = clean_match_fields(q, today=today)
    except InvalidInput as exc:
        errors = [e for e in exc.errors if e.field != "query"]
        raise InvalidInput(errors + missing) from None
    if missing:
        raise InvalidInput(missing)
    return clean


# --- Errors of sign-in and sessions ----------------------------------------------------


class InvalidCredentials(DomainError):
    """Unknown username, wrong password, or an account that may not sign in: one answer."""


class SessionRevoked(DomainError):
    pass


class PossibleDuplicates(DomainError):
    """The person may already have an account: staff must link or reject each."""

    def __init__(self, candidates: list[Match]) -> None:
        super().__init__("possible duplicates")
        self.candidates = candidates


class IdempotencyMismatch(DomainError):
    """The Idempotency-Key was used before for a different request."""


