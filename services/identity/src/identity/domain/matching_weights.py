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
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any


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
        # 1979 / 1997: one date of the 50 years for each date
        "year_digits_swapped": Rule(0.01, 1 / 18_250, "year's digits swapped"),  # +7.5
        # two digits of YYYYMMDD: about 400 of the 18,250 dates are that near
        "two_digits": Rule(0.022, 400 / 18_250, "two digits different"),  # +0.0
        "different": Rule(0.02, 0.975, "different"),  # -5.6
    },
    "ssn": {
        # Staff are told only agree / close / differ (issue 12): never which digits.
        "equal": Rule(0.95, 1e-9, "agree"),  # +29.8
        "one_digit": Rule(0.02, 81e-9, "close"),  # +17.9  one digit different
        "transposed": Rule(0.01, 1e-8, "close"),  # +19.9  two adjacent digits transposed
        "last4_equal": Rule(0.90, 1e-4, "last four agree"),  # +13.1  only last 4 known
        # a wrong number typed or remembered (issue 16): it must not sink a person
        # whose names and date of birth agree, so -4.3, not -6.6 as first set
        "different": Rule(0.05, 1.0, "differ"),  # -4.3
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


# --- Fitted weights ---------------------------------------------------------------------
#
# ``csc identity fit-matcher`` estimates the table above from the accounts themselves
# (see docs/matching.md): u from random pairs of accounts, m and the share of matches by
# expectation-maximisation over candidate pairs (the pairs the blocks bring together),
# and the frequency of each normalised first and last name for the term-frequency
# adjustment. The result is one ``Weights``; the service loads the newest from the
# ``match_weights`` table and falls back to ``DEFAULT_WEIGHTS`` (the table above).

# Outcomes the fit leaves as they are: too rare among random pairs to count (an equal
# SSN or IDOC number across two people), or not a field comparison (the swap).
FIXED_U = frozenset({
    ("ssn", "equal"), ("ssn", "one_digit"), ("ssn", "transposed"), ("ssn", "last4_equal"),
    ("idoc_number", "equal"), ("email", "equal"), ("name", "swapped"),
})
# Outcomes whose m the fit leaves: a comparison the accounts never make among
# themselves (an SSN of which only the last four digits are on file).
FIXED_M = frozenset({("ssn", "last4_equal"), ("name", "swapped")})
# The fields EM estimates (the identifiers are rare on both sides of a pair).
EM_FIELDS = ("first_name", "last_name", "date_of_birth", "ssn")
# A name's frequency is floored here: one in this many accounts at least, so that a
# name seen once does not weigh as if it were unique in the world.
TF_FLOOR_SHARE = 1e-5
# An exact name counts at most this many bits above the table's exact weight.
TF_MAX_GAIN = 4.0


@dataclass(frozen=True, eq=False)
class Weights:
    """What scoring uses: the rules, the prior, and name frequencies (share of accounts
    with that normalised name) for the term-frequency adjustment of an exact name."""

    rules: dict[str, dict[str, Rule]]
    prior_log2_odds: float = PRIOR_LOG2_ODDS
    first_tf: dict[str, float] | None = None
    last_tf: dict[str, float] | None = None
    fitted: dict[str, object] | None = None  # how and when: pairs, iterations, lambda...

    def exact_name_weight(self, fld: str, name: str) -> float:
        """log2(m / u) of an exact name: u is the name's own frequency when known."""
        rule = self.rules[fld]["exact"]
        tf = self.first_tf if fld == "first_name" else self.last_tf
        if not tf:
            return rule.weight
        share = max(tf.get(name, 0.0), TF_FLOOR_SHARE)
        return min(math.log2(rule.m / share), rule.weight + TF_MAX_GAIN)

    @cached_property
    def best_names(self) -> float:
        """The most two names can weigh (bounds for skipping hopeless candidates)."""
        gain = TF_MAX_GAIN if self.first_tf or self.last_tf else 0.0
        return self.rules["first_name"]["exact"].weight + self.rules["last_name"][
            "exact"].weight + 2 * gain

    def to_json(self) -> dict[str, object]:
        return {
            "rules": {f: {c: [r.m, r.u] for c, r in rs.items()} for f, rs in self.rules.items()},
            "prior_log2_odds": self.prior_log2_odds,
            "first_tf": self.first_tf or {}, "last_tf": self.last_tf or {},
            "fitted": self.fitted or {},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Weights:
        rules = {f: dict(rs) for f, rs in RULES.items()}  # outcomes the file lacks: the table
        for f, rs in data.get("rules", {}).items():
            for c, (m, u) in rs.items():
                if f in rules and c in rules[f]:
                    rules[f][c] = Rule(float(m), float(u), rules[f][c].text)
        return cls(rules, float(data.get("prior_log2_odds", PRIOR_LOG2_ODDS)),
                   dict(data.get("first_tf") or {}), dict(data.get("last_tf") or {}),
                   dict(data.get("fitted") or {}))


DEFAULT_WEIGHTS = Weights(RULES)

Vector = tuple[tuple[str, str], ...]  # ((field, outcome code), ...) of the compared fields


def u_from_random_pairs(
    vectors: Iterable[Vector], base: dict[str, dict[str, Rule]] = RULES, smoothing: float = 1.0
) -> dict[tuple[str, str], float]:
    """u of each outcome: its share among random pairs of accounts (add-``smoothing``),
    outcomes in ``FIXED_U`` left to the table."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for vec in vectors:
        for fld, code in vec:
            counts[fld][code] += 1
    out: dict[tuple[str, str], float] = {}
    for fld, codes in base.items():
        seen = counts.get(fld)
        if not seen:
            continue
        total = sum(seen.values()) + smoothing * len(codes)
        for code in codes:
            if (fld, code) not in FIXED_U:
                out[(fld, code)] = (seen[code] + smoothing) / total
    return out


def em(
    vectors: Iterable[Vector],
    u: dict[tuple[str, str], float],
    base: dict[str, dict[str, Rule]] = RULES,
    *,
    iterations: int = 60,
    start_lambda: float = 0.2,
    prior_pairs: float = 20.0,
) -> tuple[dict[tuple[str, str], float], float, int]:
    """m of each outcome of ``EM_FIELDS`` and lambda (the share of candidate pairs that are
    one person), by expectation-maximisation over the candidate pairs' vectors.

    Both m and the non-matches' distribution among *candidate* pairs are estimated
    (Fellegi–Sunter's two-class mixture): candidate pairs share a block, so their
    non-matches agree far more often than random pairs do, and holding u at its
    random-pair value would count those agreements as matches. Scoring then uses m from
    here with u from random pairs (``u`` seeds the non-match side). Each outcome's m is
    pulled towards the table's by ``prior_pairs`` pseudo-pairs, so an outcome the
    candidates hardly show keeps a sane value. Returns (m, lambda, pairs)."""
    grouped = Counter(tuple(sorted((f, c) for f, c in vec if f in EM_FIELDS)) for vec in vectors)
    m = {(f, c): r.m for f in EM_FIELDS for c, r in base[f].items()}
    un = {(f, c): u.get((f, c), r.u) for f in EM_FIELDS for c, r in base[f].items()}
    lam = start_lambda
    n = sum(grouped.values())
    if not n:
        return m, lam, 0
    for _ in range(iterations):
        num_m: dict[tuple[str, str], float] = defaultdict(float)
        num_u: dict[tuple[str, str], float] = defaultdict(float)
        den_m: dict[str, float] = defaultdict(float)
        den_u: dict[str, float] = defaultdict(float)
        total_p = 0.0
        for vec, count in grouped.items():
            pm, pu = lam, 1.0 - lam
            for key in vec:
                pm *= m[key]
                pu *= un[key]
            p = pm / (pm + pu) if pm + pu > 0 else 0.0
            total_p += p * count
            for key in vec:
                num_m[key] += p * count
                den_m[key[0]] += p * count
                num_u[key] += (1 - p) * count
                den_u[key[0]] += (1 - p) * count
        lam = min(max(total_p / n, 1e-6), 1 - 1e-6)
        for f in EM_FIELDS:
            if den_m[f] + den_u[f] == 0:
                continue  # never compared among the candidates: the table's m stays
            for c, r in base[f].items():
                m[(f, c)] = (num_m[(f, c)] + prior_pairs * r.m) / (den_m[f] + prior_pairs)
                un[(f, c)] = (num_u[(f, c)] + 1e-3) / (den_u[f] + 1e-3 * len(base[f]))
    return m, lam, n


def fit_weights(
    candidate_vectors: Sequence[Vector],
    random_vectors: Sequence[Vector],
    first_counts: Mapping[str, int],
    last_counts: Mapping[str, int],
    accounts: int,
    *,
    base: Weights = DEFAULT_WEIGHTS,
    tf_top: int = 20_000,
    fitted_at: str = "",
) -> Weights:
    """New weights: u from ``random_vectors``, m by EM over ``candidate_vectors``, name
    frequencies from the counts (the ``tf_top`` commonest of each kept; rarer names get
    the floor). Outcomes the data cannot inform keep the table's numbers."""
    u = u_from_random_pairs(random_vectors, base.rules)
    m, lam, n = em(candidate_vectors, u, base.rules)
    rules = {f: dict(rs) for f, rs in base.rules.items()}
    for f, rs in rules.items():
        for c, r in rs.items():
            fitted_m = r.m if (f, c) in FIXED_M else m.get((f, c), r.m)
            if c == "different":
                # EM tells matches from non-matches by these very fields, so it counts
                # a true match whose field differs (an SSN typed or remembered wrong, a
                # date of birth mangled) as a non-match and drives m to nothing: one
                # such field would then sink a person everything else points to. The
                # table's m (what we know of entry errors) is the floor.
                fitted_m = max(fitted_m, r.m)
            rs[c] = Rule(fitted_m, u.get((f, c), r.u), r.text)

    def tf(counts: Mapping[str, int]) -> dict[str, float]:
        top = sorted(counts.items(), key=lambda kv: -kv[1])[:tf_top]
        return {k: round(v / max(accounts, 1), 8) for k, v in top}

    return Weights(rules, base.prior_log2_odds, tf(first_counts), tf(last_counts), {
        "at": fitted_at, "accounts": accounts, "candidate_pairs": n,
        "random_pairs": len(random_vectors), "lambda": lam,
    })
