"""Findings: what is wrong with a workbook, where (file, sheet, row, column) and why.

A returned workbook with any finding is rejected whole (`reject`): a WorkbookError lists
them, and `write_findings` keeps them all in a CSV of REPORT_COLUMNS — the columns of the plan
import's quarantine report, written by the same `write_report`. Personal data is masked.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from duban.rules.formulas import csv_safe
from duban.rules.masking import mask_personal_data
from duban.workbooks.sheets import RowCheck

__all__ = (
    "MAX_MESSAGE_LINES",
    "REPORT_COLUMNS",
    "Finding",
    "WorkbookError",
    "reject",
    "row_findings",
    "write_findings",
    "write_report",
)

REPORT_COLUMNS = ("file", "sheet", "row", "field", "column", "value", "reason")
MAX_MESSAGE_LINES = 50


@dataclass(frozen=True)
class Finding:
    file: str  # the file name
    sheet: str | None = None
    row: int | None = None  # as a spreadsheet shows it: the header is row 1
    field: str | None = None
    column: str | None = None  # the header as in the file
    value: str = ""
    reason: str = ""

    def text(self) -> str:
        where = [self.file]
        if self.sheet is not None:
            where.append(f"sheet {self.sheet!r}")
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column:
            where.append(f"column {self.column}")
        return ", ".join(where) + ": " + mask_personal_data(self.reason)


class WorkbookError(ValueError):
    """A workbook that cannot be written, or a returned one rejected whole.

    `findings` lists every problem found (file, sheet, row, column, reason); the message
    shows at most MAX_MESSAGE_LINES of them, and `report_path` (when set) holds them all.
    """

    def __init__(
        self,
        message: str,
        findings: list[Finding] | None = None,
        report_path: Path | None = None,
    ) -> None:
        self.findings = findings or []
        self.report_path = report_path
        lines = [message]
        shown = self.findings[:MAX_MESSAGE_LINES]
        lines += [f"  {f.text()}" for f in shown]
        rest = len(self.findings) - len(shown)
        if rest > 0:
            lines.append(f"  … and {rest} more")
        if report_path is not None:
            lines.append(f"  (all findings: {report_path})")
        super().__init__("\n".join(lines))


def row_findings(file: str, check: RowCheck) -> list[Finding]:
    """The errors a RowCheck collected, as findings of its sheet and row."""
    return [
        Finding(
            file,
            check.sheet.title,
            check.row.number,
            err["field"],
            err["column"],
            err["value"],
            err["reason"],
        )
        for err in check.errors
    ]


def write_report(target: Path, findings: Iterable[Finding]) -> None:
    """One CSV line of REPORT_COLUMNS per finding (UTF-8 with BOM, for Excel)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.writer(handle)
        writer.writerow(REPORT_COLUMNS)
        for f in findings:
            writer.writerow(
                csv_safe(v)  # no cell of data runs as a formula (duban/rules/formulas.py)
                for v in (
                    f.file,
                    f.sheet or "",
                    f.row or "",
                    f.field or "",
                    f.column or "",
                    mask_personal_data(f.value),
                    mask_personal_data(f.reason),
                )
            )


def write_findings(reports_dir: Path, kind: str, path: Path, findings: list[Finding]) -> Path:
    """Every finding of a rejected workbook as a CSV line (the columns of the plan import's
    quarantine report), under reports_dir/rejected/<time>-<kind>-<file>.csv."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    target = reports_dir / "rejected" / f"{stamp}-{kind}-{path.stem}.csv"
    write_report(target, findings)
    return target


E = TypeVar("E", bound=WorkbookError)


def reject(
    error: type[E],
    path: Path,
    findings: list[Finding],
    reports_dir: Path | None,
    *,
    kind: str,
    verdict: str,
) -> E:
    """The error that rejects workbook `path` for `findings` (to raise), e.g. "x.xlsx:
    <verdict>: 3 problems found"; with `reports_dir`, all of them also go to a CSV there
    (write_findings, under `kind`)."""
    report = write_findings(reports_dir, kind, path, findings) if reports_dir else None
    n = len(findings)
    return error(
        f"{path.name}: {verdict}: {n} problem{'s' if n != 1 else ''} found", findings, report
    )
