"""The spot check's draw (duban/rules/sampling.py): reproducible, keyed by the secret,
independent of input order, sized by the rule."""

from __future__ import annotations

import hashlib
import hmac
import random
from decimal import Decimal
from pathlib import Path

import pytest

from duban.config import ConfigError, load_config, secret_bytes
from duban.rules.sampling import (
    Candidate,
    SampleRule,
    draw,
    draw_fingerprint,
    ordered,
    sample_size,
    seed_fingerprint,
    stratum_seed,
)

SECRET = b"a-secret-of-the-supervision-office"
RULE = SampleRule(min_count=3, percent=Decimal("0.02"))


def population(units: dict[str, int], kind: str = "ticket") -> list[Candidate]:
    out = []
    next_id = 1
    for unit, n in units.items():
        for i in range(n):
            out.append(Candidate(kind, next_id, unit, f"test:{unit}-{i:05d}"))
            next_id += 1
    return out


def keys(result: object) -> list[str]:
    return [d.candidate.key for d in result.items]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("population", "expected"),
    [
        (0, 0),  # nothing reported done: nothing drawn
        (1, 1),  # fewer than min_count: everything
        (2, 2),
        (3, 3),
        (100, 3),  # 2 % of 100 is 2: min_count wins
        (150, 3),  # exactly 3.0: no rounding up past it
        (151, 4),  # 3.02 -> 4
        (1000, 20),
        (1_000_000, 20_000),
    ],
)
def test_sample_size_follows_the_rule(population: int, expected: int) -> None:
    assert sample_size(population, RULE) == expected


def test_sample_size_cap_and_decimal_percent() -> None:
    capped = SampleRule(min_count=3, percent=Decimal("0.02"), max_per_stratum=30)
    assert sample_size(1_000_000, capped) == 30
    assert sample_size(2, capped) == 2
    # 7 % of 100 is 7 (a float product would be 7.000000000000001 and round up to 8)
    assert sample_size(100, SampleRule(min_count=0, percent=Decimal("0.07"))) == 7
    assert sample_size(0, SampleRule(min_count=0, percent=Decimal("0"))) == 0
    with pytest.raises(ValueError):
        sample_size(-1, RULE)
    with pytest.raises(ValueError):
        SampleRule(percent=Decimal("1.5"))


def test_same_draw_twice() -> None:
    items = population({"dc-jianguomen": 400, "cy-sanlitun": 37, "housing": 2})
    first = draw(SECRET, "2026-Q3", items, RULE)
    again = draw(SECRET, "2026-Q3", list(items), RULE)
    assert keys(first) == keys(again) and first == again
    assert first.fingerprint == draw_fingerprint(SECRET, "2026-Q3")


def test_strata_sizes_follow_the_rule_and_items_stay_in_their_stratum() -> None:
    sizes = {"big": 5000, "mid": 400, "small": 2, "one": 1}
    items = population(sizes) + population({"big": 7}, kind="plan_task")
    result = draw(SECRET, "2026-Q3", items, RULE)
    got = {s.name: (s.population, s.size) for s in result.strata}
    assert got == {
        "big|ticket": (5000, 100),
        "mid|ticket": (400, 8),
        "small|ticket": (2, 2),
        "one|ticket": (1, 1),
        "big|plan_task": (7, 3),
    }
    for stratum in result.strata:
        drawn = [d for d in result.items if d.candidate.stratum == stratum.name]
        assert len(drawn) == stratum.size == len({d.candidate.key for d in drawn})
        assert [d.rank for d in drawn] == list(range(1, stratum.size + 1))
    assert result.population == 5000 + 400 + 2 + 1 + 7


def test_empty_population_draws_nothing() -> None:
    result = draw(SECRET, "2026-Q3", [], RULE)
    assert result.items == () and result.strata == () and result.population == 0


def test_different_secret_different_sample() -> None:
    items = population({"dc-jianguomen": 1000})
    one = draw(SECRET, "2026-Q3", items, RULE)
    other = draw(b"another-secret-entirely-0000", "2026-Q3", items, RULE)
    assert len(keys(one)) == len(keys(other)) == 20
    assert set(keys(one)) != set(keys(other))
    assert one.fingerprint != other.fingerprint
    # ... and a different quarter too, with the same secret
    assert set(keys(draw(SECRET, "2026-Q4", items, RULE))) != set(keys(one))


def test_input_order_does_not_matter() -> None:
    items = population({"a": 300, "b": 50}) + population({"a": 20}, kind="plan_task")
    expected = keys(draw(SECRET, "2026-Q3", items, RULE))
    rng = random.Random(7)
    for _ in range(5):
        shuffled = items[:]
        rng.shuffle(shuffled)
        assert keys(draw(SECRET, "2026-Q3", shuffled, RULE)) == expected
        # streamed with counts given, as the flow does
        counts = {"a|ticket": 300, "b|ticket": 50, "a|plan_task": 20}
        assert keys(draw(SECRET, "2026-Q3", iter(shuffled), RULE, counts)) == expected


def test_the_draw_is_the_documented_hmac_order() -> None:
    """An auditor with the secret recomputes the sample with hashlib alone."""
    items = population({"dc-jianguomen": 250})
    result = draw(SECRET, "2026-Q3", items, RULE)
    seed = hmac.new(SECRET, b"2026-Q3|dc-jianguomen|ticket", hashlib.sha256).digest()
    assert seed == stratum_seed(SECRET, "2026-Q3", "dc-jianguomen|ticket")
    by_hand = sorted(
        (c.key for c in items), key=lambda k: hmac.new(seed, k.encode(), hashlib.sha256).digest()
    )
    assert keys(result) == by_hand[:5]  # ceil(2 % of 250) = 5
    assert ordered(SECRET, "2026-Q3", "dc-jianguomen|ticket", [c.key for c in items]) == by_hand
    fingerprint = hashlib.sha256(seed).hexdigest()
    assert {d.seed_fingerprint for d in result.items} == {fingerprint} == {seed_fingerprint(seed)}
    assert SECRET.hex() not in fingerprint and len(fingerprint) == 64


def test_a_population_that_changed_while_read_is_refused() -> None:
    items = population({"a": 10})
    with pytest.raises(ValueError, match="population changed"):
        draw(SECRET, "2026-Q3", items, RULE, {"a|ticket": 11})
    with pytest.raises(ValueError, match="not counted"):
        draw(SECRET, "2026-Q3", items, RULE, {"b|ticket": 10})
    with pytest.raises(ValueError, match="secret"):
        draw(b"", "2026-Q3", items, RULE)


def test_config_errors_name_file_key_and_value_and_the_environment_secret_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DUBAN_SPOT_CHECK_SECRET", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env around
    path = tmp_path / "spot_check.yaml"
    path.write_text("min_count: 3\npercent: 1.5\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        _ = load_config(tmp_path).spot_check
    assert f"{path}: percent:" in str(caught.value) and "1.5" in str(caught.value)
    path.write_text("secret: tiny-secret\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        _ = load_config(tmp_path).spot_check
    assert f"{path}: secret:" in str(caught.value)
    assert "tiny-secret" not in str(caught.value)  # never echoed

    path.write_text("percent: 0.05\nsecret: the-file-secret-0123456789\n", encoding="utf-8")
    from_file = load_config(tmp_path).spot_check
    assert from_file.rule == SampleRule(3, Decimal("0.05"), None)
    assert "the-file-secret" not in repr(from_file)
    monkeypatch.setenv("DUBAN_SPOT_CHECK_SECRET", "the-environment-secret-42")
    from_env = load_config(tmp_path).spot_check
    assert from_env.secret is not None
    assert from_env.secret.get_secret_value() == "the-environment-secret-42"

    path.write_text("min_count: 2\n", encoding="utf-8")
    monkeypatch.delenv("DUBAN_SPOT_CHECK_SECRET")
    with pytest.raises(ConfigError, match="DUBAN_SPOT_CHECK_SECRET"):
        secret_bytes(load_config(tmp_path).spot_check, tmp_path)
