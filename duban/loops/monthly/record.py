"""The monthly bulletin is a record (记录), and a changed figure is corrected (更正).

- `record_bulletin`: when the drafts are rendered, the figures they show are recorded as
  version 0 (duban/notices/records.py); approving publishes them and freezes the files
  (duban/loops/monthly/approve.py).
- `check_published`: a re-run of a published month writes the frozen files back (it never
  renders today's data), compares the latest published figures with today's and, when
  they differ, tells the office once per set of changes (its own notice, sent at once);
  with `correct=True` it renders a correction (更正) listing every changed figure, old and
  new, to the office, and to each unit the changes among the figures its bulletin showed
  it (the city's, its own, its peer group's rows: `seen_by`), held as drafts like the
  bulletin and approved the same way — version n + 1, compared next time.

docs/monthly-bulletin.md, "Records and corrections".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from duban.context import LoopContext
from duban.db import session_scope
from duban.loops.monthly.report import LOOP, measure_monthly, office_context
from duban.notices import approval, records
from duban.notices.records import Change, Figure
from duban.notices.render import archive_notice, render_notice
from duban.notices.todo import todo
from duban.periods import MonthPeriod
from duban.queries import notices as qn
from duban.rules.ranking import RATE_NAMES, RATES

__all__ = [
    "BULLETIN",
    "CheckResult",
    "bulletin_figures",
    "check_published",
    "correction_kind",
    "record_bulletin",
]

BULLETIN = "bulletin"
CITY = "*"  # the unit of a city-wide figure (no unit code is "*")
PLAN_FIGURES = {
    "tasks_due": "应完成任务（项）",
    "tasks_done_due": "应完成任务中已完成（项）",
    "completion_to_date": "序时完成率",
    "tasks": "全年任务（项）",
    "tasks_done": "全年任务已完成（项）",
    "completion_year": "全年完成率",
    "policies": "政策（项）",
    "policies_issued": "已出台政策（项）",
    "issuance_rate": "政策出台率",
}
RATE_LIKE = {"completion_to_date", "completion_year", "issuance_rate", *RATES}

log = logging.getLogger("duban")


def correction_kind(version: int) -> str:
    return f"correction-{version}"


def _pct(value: Any) -> str | None:
    return None if value is None else f"{100 * value:.1f}%"


def _count(value: Any) -> str | None:
    return None if value is None else str(int(value))


def bulletin_figures(office: dict[str, Any]) -> list[Figure]:
    """Every figure the bulletin shows, printed as it prints it (rates to 0.1 %, scores to
    0.1; None: missing), from the office's context (report.office_context): the headline,
    each problem's volumes, the plan totals, the ledger, and per unit its tickets, rates,
    score, rank, whether it is named, and its items on the ledger."""
    out = [Figure(CITY, "headline", "通报要点", office["headline"])]
    for v in office["volumes"]:
        name = f"{v['problem']} {v['problem_name']}"
        out += [
            Figure(CITY, f"{v['problem']}.this_month", f"{name} 本月工单", _count(v["this_month"])),
            Figure(CITY, f"{v['problem']}.last_month", f"{name} 上月工单", _count(v["last_month"])),
            Figure(CITY, f"{v['problem']}.mom_change", f"{name} 环比", _pct(v["mom_change"])),
        ]  # fmt: skip
    totals = office["plan_totals"]
    for key, label in PLAN_FIGURES.items():
        shown = _pct(totals[key]) if key in RATE_LIKE else _count(totals[key])
        out.append(Figure(CITY, key, label, shown))
    out += [
        Figure(CITY, "overdue_total", "逾期未完成任务（项）", _count(office["overdue_total"])),
        Figure(CITY, "ledger_total", "挂账事项（项）", _count(office["ledger_total"])),
    ]
    for group in office["groups"]:
        for u in [*group["ranked"], *group["unranked"]]:
            code, name = u["code"], u["name"]
            out.append(Figure(code, "tickets", f"{name} 工单（件）", _count(u["tickets"])))
            out += [
                Figure(code, k, f"{name} {RATE_NAMES[k]}", _pct(u["rates"].get(k))) for k in RATES
            ]
            score = None if u["score"] is None else f"{u['score']:.1f}"
            out += [
                Figure(code, "score", f"{name} 综合得分", score),
                Figure(code, "rank", f"{name} 排名", _count(u["rank"])),
                Figure(code, "named", f"{name} 被通报", "是" if u["named"] else "否"),
            ]
    for row in office["ledger_by_unit"]:
        label = f"{row['unit_name']} 挂账事项（项）"
        out.append(Figure(str(row["unit"]), "ledger_items", label, _count(row["items"])))
    return out


def _office_now(ctx: LoopContext, period: MonthPeriod) -> dict[str, Any]:
    return office_context(ctx.config, measure_monthly(ctx.engine, ctx.config, period), [])


# What a unit's bulletin shows of each unit of its peer group (sections.py): never its items.
PEER_FIGURES = frozenset({"tickets", *RATES, "score", "rank", "named"})


def peer_groups(office: dict[str, Any]) -> dict[str, frozenset[str]]:
    """Each ranked unit's peer group (its codes, itself included), as its bulletin shows it."""
    out: dict[str, frozenset[str]] = {}
    for group in office["groups"]:
        codes = frozenset(u["code"] for u in [*group["ranked"], *group["unranked"]])
        out.update(dict.fromkeys(codes, codes))
    return out


def seen_by(audience: str, found: list[Change], peers: dict[str, frozenset[str]]) -> list[Change]:
    """The changes among the figures `audience`'s bulletin showed: the office's, all; a
    unit's, the city's, its own and its peer group's rows (sections.py) — a correction
    tells no unit another's figures it was not sent."""
    if audience == "office":
        return list(found)
    group = peers.get(audience, frozenset())
    return [
        c
        for c in found
        if c.unit in (CITY, audience) or (c.unit in group and c.figure in PEER_FIGURES)
    ]


def record_bulletin(ctx: LoopContext, office: dict[str, Any], period: MonthPeriod) -> bool:
    """Record the figures of the month's bulletin (version 0) as its drafts will show them:
    called just before they are rendered from the same measurement (a run that died between
    the two is followed by one that measures, records and renders again)."""
    return records.record_draft(
        ctx.engine, LOOP, period.label, 0, BULLETIN, bulletin_figures(office), replace=True
    )


@dataclass
class CheckResult:
    published_version: int
    files: int  # frozen files of the published versions
    restored: int  # written back because missing or different on disk
    changes: list[Change] = field(default_factory=list)
    office_told: bool = False  # the office's notice about these changes was recorded now
    correction: int | None = None  # the version of the correction drafted (or pending)
    correction_notices: int = 0  # correction notices rendered by this run

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "published_version": self.published_version,
            "files_reproduced": self.files,
            "files_restored": self.restored,
            "figures_changed": len(self.changes),
        }
        if self.changes:
            out["changed"] = records.describe(self.changes)
            out["office_told"] = self.office_told
        if self.correction is not None:
            out["correction"] = self.correction
            out["correction_notices"] = self.correction_notices
        return out


def _shown(value: str | None) -> str:
    return "—" if value is None else value


def check_published(
    ctx: LoopContext, period: MonthPeriod, *, correct: bool, dry_run: bool, logger: Any = log
) -> CheckResult | None:
    """For a published month: reproduce its files, compare its figures with today's, tell
    the office of a change, and draft a correction when asked. None if nothing of the
    month is published (the flow renders or reuses drafts as before)."""
    latest = records.latest_published(ctx.engine, LOOP, period.label)
    if latest is None:
        return None
    folder = ctx.archive_folder(LOOP, period.label, dry_run) if dry_run else None
    copied = records.reproduce(ctx.engine, LOOP, period.label, folder)
    office = _office_now(ctx, period)
    now = bulletin_figures(office)
    found = records.changes(latest.figures, now)
    result = CheckResult(latest.version, copied.files, copied.restored, found)
    logger.info(
        "monthly %s: published version %d reproduced (%d files, %d restored); %d figures "
        "changed since", period.label, latest.version, copied.files, copied.restored, len(found),
    )  # fmt: skip
    pending = records.draft_version(ctx.engine, LOOP, period.label)
    if pending is not None:
        result.correction = pending  # drafted earlier, waiting for approval
    if not found or dry_run:
        return result
    if correct and pending is None:
        result.correction = latest.version + 1
        result.correction_notices = _draft_correction(
            ctx, period, latest, found, now, result.correction, peer_groups(office)
        )
    elif not correct:
        result.office_told = _tell_office(ctx, period, latest, found)
    return result


def _base(ctx: LoopContext, period: MonthPeriod, latest: records.Published) -> dict[str, Any]:
    return {
        "month": period.label,
        "month_title": period.title,
        "subject_prefix": ctx.config.mail.subject_prefix,
        "published_version": latest.version,
        "published_on": latest.published_at.date(),
        "generated_for": f"月通报 {period.label}",
    }


def _rows(found: list[Change]) -> list[dict[str, str]]:
    return [{"label": c.label, "old": _shown(c.old), "new": _shown(c.new)} for c in found]


def _tell_office(
    ctx: LoopContext, period: MonthPeriod, latest: records.Published, found: list[Change]
) -> bool:
    """The office's notice that published figures changed: once per set of changes (its kind
    carries their fingerprint), approved at once (it goes to the office only)."""
    kind = f"changed-{records.digest(found)}"
    context = {
        **_base(ctx, period, latest),
        "changes": _rows(found),
        "todo": todo(
            f"核对已发布通报中与当前数据不一致的 {len(found)} 项数据，决定是否发更正通报"
            f"（duban run monthly --month {period.label} --correct，经审批后发送）"
        ),
    }
    with session_scope(ctx.engine) as session:
        known = {
            (r.audience, r.kind) for r in qn.recorded(session.connection(), LOOP, period.label)
        }
        if ("office", kind) in known:
            return False
        rendered = render_notice(ctx.templates, "monthly_changed", context)
        notice = archive_notice(
            session, ctx.settings.reports_dir, loop=LOOP, period=period.label,
            audience="office", kind=kind, rendered=rendered,
        )  # fmt: skip
        session.flush()
        notice_id = notice.id
    approval.release(
        ctx.engine, [notice_id], "duban",
        origin=f"{LOOP} {period.label}: published figures changed (to the office only)",
    )  # fmt: skip
    return True


def _draft_correction(
    ctx: LoopContext,
    period: MonthPeriod,
    latest: records.Published,
    found: list[Change],
    figures: list[Figure],
    version: int,
    peers: dict[str, frozenset[str]],
) -> int:
    """Render correction `version`, as drafts, for every audience of the bulletin that was
    shown a changed figure (`seen_by`), listing those, and record it with today's figures
    (what the next correction compares against)."""
    kind = correction_kind(version)
    base = _base(ctx, period, latest) | {"version": version}
    count = 0
    with session_scope(ctx.engine) as session:
        conn = session.connection()
        audiences = [
            r.audience for r in qn.recorded(conn, LOOP, period.label) if r.kind == BULLETIN
        ]
        names = {u.code: u.name for u in ctx.config.units.units}
        for audience in audiences:
            shown = seen_by(audience, found, peers)
            if not shown:  # nothing it was sent changed: no correction for it
                continue
            unit = {"code": audience, "name": names.get(audience, audience)}
            who: dict[str, Any] = (
                {"audience": "office", "unit": None} if audience == "office"
                else {"audience": "unit", "unit": unit}
            )  # fmt: skip
            listed = {
                "changes": _rows(shown),
                "todo": todo(
                    f"以本更正通报的 {len(shown)} 项数据为准，"
                    f"替换已发布的{period.title}月通报中的对应数据"
                ),
            }
            rendered = render_notice(ctx.templates, "monthly_correction", {**base, **who, **listed})
            archive_notice(
                session, ctx.settings.reports_dir, loop=LOOP, period=period.label,
                audience=audience, kind=kind, rendered=rendered,
            )  # fmt: skip
            count += 1
    records.record_draft(ctx.engine, LOOP, period.label, version, kind, figures)
    return count
