"""`records.changes`: what a correction lists — every figure whose printed value differs,
a value that became missing or appeared counts (missing is not zero), nothing else."""

from __future__ import annotations

from duban.notices.records import Change, Figure, changes, describe, digest


def fig(unit: str, figure: str, value: str | None) -> Figure:
    return Figure(unit, figure, f"{unit} {figure}", value)


def test_only_the_changed_figures_in_the_new_order_then_the_vanished() -> None:
    old = [fig("a", "rate", "50.0%"), fig("a", "score", "80.0"), fig("b", "rate", None),
           fig("c", "rate", "10.0%"), fig("d", "rate", None)]  # fmt: skip
    new = [fig("b", "rate", "0.0%"), fig("a", "score", "80.0"), fig("a", "rate", None),
           fig("e", "rate", None), fig("f", "rate", "1.0%")]  # fmt: skip
    assert changes(old, new) == [
        Change("b", "rate", "b rate", None, "0.0%"),  # missing became zero: a change
        Change("a", "rate", "a rate", "50.0%", None),  # a value became missing
        Change("f", "rate", "f rate", None, "1.0%"),  # a new figure with a value
        Change("c", "rate", "c rate", "10.0%", None),  # no longer shown
    ]
    assert changes(new, new) == [] and changes([], []) == []


def test_digest_and_description_follow_the_changes() -> None:
    one = [Change("a", "rate", "a rate", "1.0%", "2.0%")]
    two = [Change("a", "rate", "a rate", "1.0%", "3.0%")]
    assert digest(one) == digest(list(one)) != digest(two)
    assert describe(one) == "a rate: 1.0% → 2.0%"
    many = [Change("u", str(i), f"l{i}", None, str(i)) for i in range(25)]
    text = describe(many)
    assert text.count("→") == 20 and text.endswith("; …") and "l0: — → 0" in text
