"""The quarterly spot check's draw (抽查核验 抽样): reproducible, auditable, not choosable.

The population is every item reported done in the quarter, in strata of one unit × one item
kind ("dc-jianguomen|ticket"). Per stratum:

- size: n = min(N, max(min_count, ceil(percent × N))), capped by max_per_stratum when set
  (`sample_size`; the percentage is read as a decimal, so 7 % of 100 is 7, not 8);
- seed: HMAC-SHA256(secret, "<quarter>|<unit code>|<item kind>") (`stratum_seed`);
- order: every item ranked by HMAC-SHA256(seed, item key), the lowest first, ties (never
  seen) by the key; the first n are drawn (`rank_key`, `draw`).

Item keys are public, stable identifiers, not database ids: a ticket is
"<source>:<external id>", a plan task "<problem code>:<task code>". Anybody who is given the
secret and the population can recompute the sample; nobody without the secret can predict it
or choose it, and the same quarter, secret and population always give the same sample,
whatever order the items come in. What is published is a fingerprint of each seed
(`seed_fingerprint`: SHA-256 of the seed), which commits to the seed without revealing it or
the secret. See docs/spot-check.md.

Pure functions: no database, no clock, no configuration file.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction


@dataclass(frozen=True)
class SampleRule:
    """How many items of a stratum of N items are drawn."""

    min_count: int = 3
    percent: Decimal = Decimal("0.02")  # a fraction: 0.02 is 2 %
    max_per_stratum: int | None = None

    def __post_init__(self) -> None:
        if self.min_count < 0:
            raise ValueError(f"min_count must be 0 or more (got {self.min_count})")
        if not 0 <= Decimal(self.percent) <= 1:
            raise ValueError(f"percent must be between 0 and 1 (got {self.percent})")
        if self.max_per_stratum is not None and self.max_per_stratum < 1:
            raise ValueError(f"max_per_stratum must be 1 or more (got {self.max_per_stratum})")


def sample_size(population: int, rule: SampleRule) -> int:
    """n = min(N, max(min_count, ceil(percent × N))), then at most max_per_stratum."""
    if population < 0:
        raise ValueError(f"population must be 0 or more (got {population})")
    share = math.ceil(Fraction(str(rule.percent)) * population)
    n = min(population, max(rule.min_count, share))
    if rule.max_per_stratum is not None:
        n = min(n, rule.max_per_stratum)
    return n


def stratum_name(unit_code: str, item_kind: str) -> str:
    return f"{unit_code}|{item_kind}"


def stratum_seed(secret: bytes, quarter: str, stratum: str) -> bytes:
    """HMAC-SHA256(secret, "<quarter>|<stratum>"): the seed of one stratum's draw."""
    if not secret:
        raise ValueError("the spot-check secret is empty")
    return hmac.new(secret, f"{quarter}|{stratum}".encode(), hashlib.sha256).digest()


def seed_fingerprint(seed: bytes) -> str:
    """SHA-256 of the seed, in hex (64 characters): what is recorded and published."""
    return hashlib.sha256(seed).hexdigest()


def draw_fingerprint(secret: bytes, quarter: str) -> str:
    """One short fingerprint of the quarter's draw for the notices: the first 16 hex digits
    of SHA-256(HMAC-SHA256(secret, "<quarter>|")). It changes with the secret and the
    quarter and reveals neither."""
    return seed_fingerprint(stratum_seed(secret, quarter, ""))[:16]


def rank_key(seed: bytes, key: str) -> bytes:
    """An item's place in its stratum's order: HMAC-SHA256(seed, item key)."""
    return hmac.new(seed, key.encode(), hashlib.sha256).digest()


@dataclass(frozen=True)
class Candidate:
    """An item reported done in the quarter."""

    item_kind: str  # ItemKind value: ticket | plan_task
    item_id: int  # database id (where the sample is recorded)
    unit_code: str
    key: str  # the public identifier that is ranked (see the module's docstring)

    @property
    def stratum(self) -> str:
        return stratum_name(self.unit_code, self.item_kind)


@dataclass(frozen=True)
class Drawn:
    candidate: Candidate
    rank: int  # 1 = first of its stratum's order
    seed_fingerprint: str


@dataclass(frozen=True)
class Stratum:
    name: str
    unit_code: str
    item_kind: str
    population: int
    size: int  # how many are drawn
    seed_fingerprint: str


@dataclass(frozen=True)
class Draw:
    quarter: str
    fingerprint: str  # draw_fingerprint(secret, quarter)
    strata: tuple[Stratum, ...]  # sorted by name
    items: tuple[Drawn, ...]  # by stratum, then rank

    @property
    def population(self) -> int:
        return sum(s.population for s in self.strata)


def draw(
    secret: bytes,
    quarter: str,
    candidates: Iterable[Candidate],
    rule: SampleRule,
    populations: Mapping[str, int] | None = None,
) -> Draw:
    """Draw the quarter's sample from `candidates` (any order; each item once).

    `populations` (stratum -> N) lets the candidates be streamed once, keeping only the n
    best-ranked items of each stratum in memory; without it they are counted first. A
    stratum whose count disagrees with the items seen raises ValueError (the population
    changed while it was read)."""
    if populations is None:
        candidates = list(candidates)
        counted: dict[str, int] = {}
        for c in candidates:
            counted[c.stratum] = counted.get(c.stratum, 0) + 1
        populations = counted
    sizes = {name: sample_size(n, rule) for name, n in populations.items()}
    seeds = {name: stratum_seed(secret, quarter, name) for name in populations}
    # Per stratum a max-heap (by negated rank) of its n best items so far.
    heaps: dict[str, list[tuple[bytes, tuple[int, ...], int, Candidate]]] = {
        name: [] for name in populations
    }
    seen: dict[str, int] = dict.fromkeys(populations, 0)
    for c in candidates:
        name = c.stratum
        if name not in populations:
            raise ValueError(f"item {c.key!r} is in stratum {name!r}, which was not counted")
        seen[name] += 1
        n = sizes[name]
        if n == 0:
            continue
        score = rank_key(seeds[name], c.key)
        entry = (_negate(score), _negate_text(c.key), -seen[name], c)
        heap = heaps[name]
        if len(heap) < n:
            heapq.heappush(heap, entry)
        elif entry > heap[0]:
            heapq.heapreplace(heap, entry)
    changed = {name: (populations[name], seen[name]) for name in populations}
    changed = {name: v for name, v in changed.items() if v[0] != v[1]}
    if changed:
        shown = ", ".join(f"{k}: counted {a}, read {b}" for k, (a, b) in sorted(changed.items()))
        raise ValueError(f"the population changed while it was read ({shown}); draw again")
    strata: list[Stratum] = []
    items: list[Drawn] = []
    for name in sorted(populations):
        unit_code, _, kind = name.rpartition("|")
        fingerprint = seed_fingerprint(seeds[name])
        strata.append(Stratum(name, unit_code, kind, populations[name], sizes[name], fingerprint))
        best = sorted(heaps[name], reverse=True)  # highest negated = lowest rank first
        if len({e[3].key for e in best}) != len(best):
            raise ValueError(f"stratum {name!r}: an item key appears twice")
        for rank, (*_, c) in enumerate(best, start=1):
            items.append(Drawn(c, rank, fingerprint))
    return Draw(quarter, draw_fingerprint(secret, quarter), tuple(strata), tuple(items))


def ordered(secret: bytes, quarter: str, stratum: str, keys: Iterable[str]) -> list[str]:
    """Every key of one stratum in draw order: what an auditor recomputes (the sample is
    the first n of this list)."""
    seed = stratum_seed(secret, quarter, stratum)
    return sorted(set(keys), key=lambda k: (rank_key(seed, k), k))


def _negate(score: bytes) -> bytes:
    return bytes(255 - b for b in score)


def _negate_text(key: str) -> tuple[int, ...]:
    # Ties of the 256-bit rank (never seen in practice) go to the smaller key.
    return (*(-ord(ch) for ch in key), 1)
