"""Policy rules, free of I/O: schedules, the notice, continued use, diffs."""

import difflib
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from typing import Literal
from uuid import UUID

from assent_shared.events import FIRST_PARTY, AcceptanceHow

Status = Literal["scheduled", "in_force", "superseded"]
# A client's "now" may lag ours a little; older effective times are a mistake, not a schedule.
PAST_TOLERANCE = timedelta(minutes=5)
FIRST_VERSION_TITLE = "Privacy policy"
FIRST_VERSION_SUMMARY = "The first version of the privacy policy."


class InvalidInput(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class ScheduleConflict(Exception):
    """A new version would take effect before a version published earlier."""


@dataclass(frozen=True)
class DataUse:
    """One line of the data-use map: `processor` receives `data` for `purpose`."""

    purpose: str
    processor: str
    data: tuple[str, ...]


@dataclass(frozen=True)
class NewVersion:
    title: str
    summary: str
    text: str
    material: bool
    data_use: tuple[DataUse, ...]
    effective_at: datetime | None = None


@dataclass(frozen=True)
class Version:
    policy_id: str
    version: int
    title: str
    summary: str
    text: str
    material: bool
    data_use: tuple[DataUse, ...]
    effective_at: datetime
    published_at: datetime
    in_force_since: datetime | None
    """When the version was announced (PolicyUpdated enqueued); None while it is scheduled."""


@dataclass(frozen=True)
class Acceptance:
    user_id: UUID
    policy_id: str
    version: int
    how: AcceptanceHow
    accepted_at: datetime


@dataclass(frozen=True)
class Notice:
    policy_id: str
    version: int
    title: str
    summary: str
    material: bool
    effective_at: datetime
    url: str

    @property
    def etag(self) -> str:
        digest = hashlib.sha256(f"{self.policy_id}\n{self.version}\n{self.url}".encode()).hexdigest()[:16]
        return f'"{digest}"'


@dataclass(frozen=True)
class VersionDiff:
    policy_id: str
    from_version: int
    to_version: int
    text_diff: str
    data_use_added: tuple[DataUse, ...]
    data_use_removed: tuple[DataUse, ...]


def first_version() -> NewVersion:
    text = resources.files("assent_policy").joinpath("documents", "privacy-v1.md").read_text(encoding="utf-8")
    newsletter = DataUse(purpose="newsletter", processor=FIRST_PARTY, data=("email",))
    return NewVersion(FIRST_VERSION_TITLE, FIRST_VERSION_SUMMARY, text, material=True, data_use=(newsletter,))


def check_data_use(entries: tuple[DataUse, ...]) -> None:
    seen: set[tuple[str, str]] = set()
    for entry in entries:
        if (entry.purpose, entry.processor) in seen:
            raise InvalidInput("data_use", f"{entry.purpose}/{entry.processor} is declared twice.")
        seen.add((entry.purpose, entry.processor))


def effective_time(requested: datetime | None, now: datetime, latest: Version | None) -> datetime | None:
    """The checked effective time of a new version; None means "as soon as it is stored"."""
    if requested is not None and requested < now - PAST_TOLERANCE:
        raise InvalidInput("effective_at", "The effective time is in the past; use a time from now on.")
    # Versions take effect in the order they were published, so "current" never goes backwards.
    if latest is None:
        return requested
    # "As soon as possible" waits for nothing but a version still scheduled.
    too_early = latest.in_force_since is None if requested is None else requested < latest.effective_at
    if too_early:
        raise ScheduleConflict(
            f"Version {latest.version} takes effect at {latest.effective_at.isoformat()}; "
            "a newer version cannot take effect before it."
        )
    return requested


def status(version: Version, current: int | None) -> Status:
    if version.in_force_since is None:
        return "scheduled"
    return "in_force" if version.version == current else "superseded"


def notice_for(current: Version | None, now: datetime, notice_days: float, link: str) -> Notice | None:
    """The main-page notice while the newest change is fresh; the first version is no change."""
    if current is None or current.version < 2:
        return None
    if now - current.effective_at >= timedelta(days=notice_days):
        return None
    url = link.format(policy_id=current.policy_id, version=current.version)
    return Notice(current.policy_id, current.version, current.title, current.summary, current.material,
                  current.effective_at, url)


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    # Weak comparison (RFC 9110 13.1.2): a W/ prefix does not matter for If-None-Match.
    return any(tag.strip().removeprefix("W/") == etag for tag in if_none_match.split(","))


def continued_use_due(current: int | None, newest_accepted: int | None) -> bool:
    """Activity accepts the version in force once, unless that version (or a newer) is accepted already."""
    return current is not None and (newest_accepted is None or newest_accepted < current)


def diff(old: Version, new: Version) -> VersionDiff:
    text_diff = "\n".join(difflib.unified_diff(
        old.text.splitlines(), new.text.splitlines(),
        fromfile=f"{old.policy_id}/v{old.version}", tofile=f"{new.policy_id}/v{new.version}", lineterm="",
    ))
    old_uses, new_uses = set(old.data_use), set(new.data_use)
    added = tuple(u for u in new.data_use if u not in old_uses)
    removed = tuple(u for u in old.data_use if u not in new_uses)
    return VersionDiff(old.policy_id, old.version, new.version, text_diff, added, removed)
