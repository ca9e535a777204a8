"""The import's row hash stays the one stored by earlier imports (change detection)."""

from __future__ import annotations

import pandas as pd

from duban.ingest.tickets import HASHED, hash_rows


def reference_hash(frame: pd.DataFrame) -> list[int]:
    """The original formulation: numbers and times as they are, everything else as text."""
    parts = {}
    for name in HASHED:
        series = frame[name]
        native = pd.api.types.is_datetime64_any_dtype(series) or (
            pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
        )
        parts[name] = series if native else series.astype(str)
    hashed = pd.util.hash_pandas_object(pd.DataFrame(parts, index=frame.index), index=False)
    return hashed.to_numpy(dtype="uint64").view("int64").tolist()


def frame() -> pd.DataFrame:
    times = ["2026-01-01 10:00:00", None, "2026-02-03 00:00:00", "2026-02-03 00:00:01"]
    data: dict[str, pd.Series] = {}
    for name in HASHED:
        if name.endswith("_at"):
            data[name] = pd.Series(pd.to_datetime(times, format="ISO8601")).astype("datetime64[us]")
        elif name in ("urgency", "returned_count", "reassigned_count", "unit_id"):
            data[name] = pd.Series([1, 2, 3, 4], dtype="int64")
        elif name == "problem_id":
            data[name] = pd.Series([1, None, 3, None], dtype="Int64")
        elif name == "resolved":
            data[name] = pd.Series([True, None, False, True], dtype=object)
        elif name in ("external_id", "category", "status", "content"):
            data[name] = pd.Series(["x1", "y2", "z3", "内容"], dtype=object)
        else:
            data[name] = pd.Series(["a", None, "b", "a"], dtype=object)
    return pd.DataFrame(data).set_axis([5, 6, 7, 9])


def test_row_hash_equals_the_stored_formulation() -> None:
    rows = frame()
    assert hash_rows(rows).tolist() == reference_hash(rows)
    assert hash_rows(rows).index.tolist() == [5, 6, 7, 9]
    # str dtype columns (pandas' inference) hash as object columns do.
    typed = rows.astype({"category": "str", "external_id": "str"})
    assert hash_rows(typed).tolist() == reference_hash(rows)


def test_row_hash_tells_rows_apart() -> None:
    rows = frame()
    changed = rows.copy()
    changed.loc[7, "street"] = "c"
    before, after = hash_rows(rows).tolist(), hash_rows(changed).tolist()
    assert [b == a for b, a in zip(before, after, strict=True)] == [True, True, False, True]
    assert len(set(before)) == 4
