"""The matcher's one table of m/u probabilities (Fellegi–Sunter), kept apart for tuning.

For each field and each outcome of comparing that field between two records:

* ``m`` = P(outcome | the two records are the same person),
* ``u`` = P(outcome | they are two different people, a pair picked at random).

The outcome's weight is ``log2(m / u)``: positive when the outcome is more
likely between records of one person, negative otherwise. A field missing on
either side is not compared and weighs 0. Weights of the fields are added (the
fields are assumed independent) and turned into a probability with
``PRIOR_LOG2_ODDS``, see ``matching.score``.

The numbers are judgement plus arithmetic, not an estimate from our data:
``u`` of an exact date of birth is 1/18,250 (50 years of birthdays), of an SSN
about one in a billion (SSNs are unique; equality across people is an entry
error), of a one-digit SSN slip 81 neighbours times that; ``u`` of names is the
chance two random people share it (about 1% for first names, 0.2% for last
names, no term-frequency adjustment yet). ``m`` of the outcomes of a field sums
to about 1: how often real duplicates show each kind of error. Refit them
(Splink's EM, or counts from confirmed matches) when the accuracy bench says so.

Refit once after ``bench/match_accuracy.py`` (its figures are in the commit that
made this change): people who come back years later have a respelt name, or a
year or one digit of the date of birth wrong, more often than the first guesses
said (close first name 0.05 -> 0.08, close last name 0.05 -> 0.08, compound
0.03 -> 0.04, year off by one 0.01 -> 0.03, one digit 0.03 -> 0.06), so "exact"
gives up the difference (0.86 -> 0.83, 0.88 -> 0.84, 0.90 -> 0.85). Nickname
stays 0.05. The ``u`` side, the prior and the thresholds are unchanged: names
alone still stay below "possible".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property


@dataclass(frozen=True)
class Rule:
    m: float
    u: float
    text: str

    @cached_property
    def weight(self) -> float:
        return math.log2(self.m / self.u)


FIELD_LABELS: dict[str, str] = {
    "first_name": "first name",
    "last_name": "last name",
    "name": "name",
    "date_of_birth": "date of birth",
    "ssn": "SSN",
    "idoc_number": "IDOC number",
    "email": "email",
}

# field -> outcome code -> Rule(m, u, text shown to staff)      weight = log2(m/u)
RULES: dict[str, dict[str, Rule]] = {
    "first_name": {
        "exact": Rule(0.83, 0.01, "exact"),  # +6.4
        "nickname": Rule(0.05, 0.002, "nickname"),  # +4.6
        "close": Rule(0.08, 0.005, "close"),  # +4.0  Jaro–Winkler >= 0.92
        "initial": Rule(0.01, 0.002, "initial only"),  # +2.3
        "different": Rule(0.03, 0.98, "different"),  # -5.0
    },
    "last_name": {
        "exact": Rule(0.84, 0.002, "exact"),  # +8.7
        "compound": Rule(0.04, 0.0005, "compound part equal"),  # +6.3
        "close": Rule(0.08, 0.003, "close"),  # +4.7  JW >= 0.92 or one edit (or swap)
        "different": Rule(0.04, 0.99, "different"),  # -4.6  (marriage, etc.)
    },
    # Names entered the wrong way round: m = P(swap | same person). It is added to the
    # weights of the crossed comparisons (query first vs candidate last, and back),
    # which then replace both name rows: exact both ways gives 6.4 + 8.7 - 5.6 = +9.5.
    "name": {
        "swapped": Rule(0.02, 1.0, "first and last names swapped"),  # -5.6
    },
    "date_of_birth": {
        "exact": Rule(0.85, 1 / 18_250, "exact"),  # +13.9
        "day_month_swapped": Rule(0.03, 1 / 18_250, "day and month swapped"),  # +9.1
        "year_off_by_one": Rule(0.03, 2 / 18_250, "year off by one"),  # +8.1
        "one_digit": Rule(0.06, 25 / 18_250, "one digit different"),  # +5.5
        "different": Rule(0.03, 0.998, "different"),  # -5.1
    },
    "ssn": {
        "equal": Rule(0.95, 1e-9, "equal"),  # +29.8
        "one_digit": Rule(0.02, 81e-9, "one digit different"),  # +17.9
        "transposed": Rule(0.01, 1e-8, "two adjacent digits transposed"),  # +19.9
        "last4_equal": Rule(0.90, 1e-4, "last four equal"),  # +13.1  only last 4 known
        "different": Rule(0.01, 1.0, "different"),  # -6.6
    },
    "idoc_number": {
        "equal": Rule(0.98, 1e-8, "equal"),  # +26.5
        "different": Rule(0.02, 1.0, "different"),  # -5.6
    },
    "email": {
        "equal": Rule(0.60, 1e-6, "equal"),  # +19.2  families share addresses
        "different": Rule(0.40, 1.0, "different"),  # -1.3  people change addresses
    },
}

# log2 prior odds that a compared pair is one person: about 1 in 65,000. Lower than
# 1/N for N accounts because candidates come from blocks (they already share a key)
# and because the name weights ignore how rare a name is. With the thresholds
# 0.6 / 0.95 a pair needs a total weight of about +16.6 to be "possible" and
# +20.2 to be "strong": names and date of birth exact is +29.0, SSN equal alone
# +29.8, both names exact without anything else +15.1 (not returned).
PRIOR_LOG2_ODDS = -16.0


def probability_of(total_weight: float, prior_log2_odds: float = PRIOR_LOG2_ODDS) -> float:
    """Posterior of "same person": 1 / (1 + 2^-(prior + total weight))."""
    x = max(-1000.0, min(1000.0, prior_log2_odds + total_weight))
    return 1.0 / (1.0 + math.pow(2.0, -x))


def weight_for(probability: float, prior_log2_odds: float = PRIOR_LOG2_ODDS) -> float:
    """The total weight at which a pair reaches ``probability`` (inverse of probability_of)."""
    return math.log2(probability / (1.0 - probability)) - prior_log2_odds if probability < 1 \
        else math.inf
