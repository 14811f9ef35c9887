"""Policy rules without I/O: schedules, the notice, continued use, diffs, the seeded text."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from assent_policy import domain

NOW = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)


def version(number: int, effective_at: datetime = NOW, in_force: bool = True, text: str = "a\nb\n",
            uses: tuple[domain.DataUse, ...] = ()) -> domain.Version:
    return domain.Version("privacy", number, f"Title {number}", f"Summary {number}", text, True, uses,
                          effective_at, NOW - timedelta(days=1), effective_at if in_force else None)


def test_the_seeded_first_version_makes_the_promises_of_the_demo_site():
    first = domain.first_version()
    text = " ".join(first.text.lower().split())  # promises may wrap across lines
    for promise in ("only if you volunteer", "anonymously", "browser", "operating system",
                    "internet service provider", "cookies are optional", "never sell, trade or rent",
                    "aggregated", "not linked to any personal information", "only with your permission",
                    "opts you in to our newsletter", "one click", "notice on the main page",
                    "continued use", "unauthorized access, alteration", "disclosure or destruction"):
        assert promise in text, promise
    assert first.data_use == (domain.DataUse("newsletter", "first_party", ("email",)),)


def test_notice_shows_while_the_change_is_fresh_and_never_for_the_first_version():
    link = "/p/{policy_id}/{version}"
    changed = version(2, effective_at=NOW - timedelta(days=29, hours=23))
    notice = domain.notice_for(changed, NOW, 30, link)
    assert notice is not None and notice.url == "/p/privacy/2" and notice.summary == "Summary 2"
    assert domain.notice_for(replace(changed, effective_at=NOW - timedelta(days=30)), NOW, 30, link) is None
    assert domain.notice_for(version(1), NOW, 30, link) is None
    assert domain.notice_for(None, NOW, 30, link) is None


def test_notice_etag_is_stable_per_version_and_if_none_match_uses_weak_comparison():
    two = domain.notice_for(version(2), NOW, 30, "/{version}")
    three = domain.notice_for(version(3), NOW, 30, "/{version}")
    assert two.etag == domain.notice_for(version(2), NOW + timedelta(hours=1), 30, "/{version}").etag
    assert two.etag != three.etag
    assert domain.etag_matches(two.etag, two.etag)
    assert domain.etag_matches(f'"other", W/{two.etag}', two.etag)
    assert domain.etag_matches("*", two.etag)
    assert not domain.etag_matches(three.etag, two.etag)
    assert not domain.etag_matches(None, two.etag)


@pytest.mark.parametrize(("current", "accepted", "due"), [
    (None, None, False),  # no version in force: nothing to accept
    (1, None, True),  # a user we never saw accept anything
    (2, 1, True),  # a new version took effect since they accepted
    (2, 2, False),  # already accepted, however
    (2, 3, False),  # accepted a newer one at signup
])
def test_continued_use_accepts_the_version_in_force_once(current, accepted, due):
    assert domain.continued_use_due(current, accepted) is due


def test_effective_time_keeps_versions_in_publication_order():
    in_force = version(1, effective_at=NOW - timedelta(days=3))
    assert domain.effective_time(None, NOW, in_force) is None
    assert domain.effective_time(NOW + timedelta(days=1), NOW, in_force) == NOW + timedelta(days=1)
    scheduled = version(2, effective_at=NOW + timedelta(days=7), in_force=False)
    with pytest.raises(domain.ScheduleConflict):
        domain.effective_time(None, NOW, scheduled)
    with pytest.raises(domain.ScheduleConflict):
        domain.effective_time(NOW + timedelta(days=6), NOW, scheduled)
    assert domain.effective_time(NOW + timedelta(days=7), NOW, scheduled) == NOW + timedelta(days=7)
    with pytest.raises(domain.InvalidInput) as past:
        domain.effective_time(NOW - timedelta(hours=1), NOW, None)
    assert past.value.field == "effective_at"
    assert domain.effective_time(NOW - timedelta(seconds=30), NOW, None) == NOW - timedelta(seconds=30)


def test_status_tells_scheduled_in_force_and_superseded_apart():
    assert domain.status(version(3, in_force=False), 2) == "scheduled"
    assert domain.status(version(2), 2) == "in_force"
    assert domain.status(version(1), 2) == "superseded"


def test_diff_shows_text_changes_and_processors_added_or_removed():
    mail = domain.DataUse("newsletter", "first_party", ("email",))
    survey = domain.DataUse("surveys", "acme", ("email", "answers"))
    old = version(1, text="We never sell data.\nCookies are optional.", uses=(mail,))
    new = version(2, text="We never sell data.\nCookies are required.", uses=(mail, survey))
    found = domain.diff(old, new)
    lines = found.text_diff.splitlines()
    assert lines[:2] == ["--- privacy/v1", "+++ privacy/v2"]
    assert "-Cookies are optional." in lines and "+Cookies are required." in lines
    assert " We never sell data." in lines
    assert found.data_use_added == (survey,) and found.data_use_removed == ()
    assert domain.diff(new, old).data_use_removed == (survey,)


def test_data_use_may_declare_a_purpose_and_processor_once():
    entry = domain.DataUse("surveys", "acme", ("email",))
    domain.check_data_use((entry, domain.DataUse("surveys", "first_party", ())))
    with pytest.raises(domain.InvalidInput):
        domain.check_data_use((entry, replace(entry, data=())))
