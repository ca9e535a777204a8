"""The xlsx code the three workbooks share: the plan workbook 一方案三清单
(duban/ingest/plan.py), the ledger 台账 (duban/loops/monthly/ledger.py) and the spot-check
checklist 抽查核验清单 (duban/loops/quarterly/checklist.py).

- cells: a cell's text, header keys, drop-down word keys, dates, months, progress, display
  width, and `same_value` (does a value read back leave a stored field as it is);
- sheets: Column and SheetSpec (a sheet's format), opening a workbook, finding sheets and
  read-me labels, reading a sheet into rows, RowCheck (the checks of one row's cells);
- findings: Finding, WorkbookError, `reject` (a returned workbook rejected whole), the CSV
  report of the findings (`write_findings`, `write_report`);
- audit: AuditTrail, the AuditRecords of an import;
- lists: the fill-in list sheet (ListSheet) and the read-me sheet the ledger and the
  checklist send out;
- save: `save_deterministic`, same content, same bytes;
- detail: the read-only workbook of the full list behind a notice's capped list
  (`write_detail_workbook`), and Chinese file names safe on any file system (`file_name`).

Each module declares its public names in `__all__`; the workbook modules import them from
here.
"""

from duban.workbooks.audit import AuditTrail, audit_text
from duban.workbooks.cells import (
    PROGRESS_DECIMALS,
    cell_text,
    date_of,
    display_width,
    header_key,
    month_of,
    parse_progress,
    same_value,
    word_key,
)
from duban.workbooks.detail import DetailSheet, file_name, write_detail_workbook
from duban.workbooks.findings import (
    MAX_MESSAGE_LINES,
    REPORT_COLUMNS,
    Finding,
    WorkbookError,
    reject,
    row_findings,
    write_findings,
    write_report,
)
from duban.workbooks.lists import ListLayout, ListSheet, write_readme
from duban.workbooks.save import neutralise_formulas, save_deterministic
from duban.workbooks.sheets import (
    Column,
    Row,
    RowCheck,
    Sheet,
    SheetError,
    SheetSpec,
    WorkbookFileError,
    labelled_values,
    map_header,
    open_workbook,
    read_sheet,
    titles_named,
)

__all__ = (
    "MAX_MESSAGE_LINES",
    "PROGRESS_DECIMALS",
    "REPORT_COLUMNS",
    "AuditTrail",
    "Column",
    "DetailSheet",
    "Finding",
    "ListLayout",
    "ListSheet",
    "Row",
    "RowCheck",
    "Sheet",
    "SheetError",
    "SheetSpec",
    "WorkbookError",
    "WorkbookFileError",
    "audit_text",
    "cell_text",
    "date_of",
    "display_width",
    "file_name",
    "header_key",
    "labelled_values",
    "map_header",
    "month_of",
    "neutralise_formulas",
    "open_workbook",
    "parse_progress",
    "read_sheet",
    "reject",
    "row_findings",
    "same_value",
    "save_deterministic",
    "titles_named",
    "word_key",
    "write_detail_workbook",
    "write_findings",
    "write_readme",
    "write_report",
)
