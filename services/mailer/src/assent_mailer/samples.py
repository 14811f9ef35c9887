"""Sample variables of every mail, for the admin's preview and the template tests: invented, never a person's."""

from datetime import UTC, datetime

_SITE = "https://site.example"
_WHEN = datetime(2026, 5, 4, 9, 30, tzinfo=UTC)
_UNSUBSCRIBE = f"{_SITE}/unsubscribe?token=sample-token"

SAMPLES: dict[str, dict] = {
    "welcome": {"my_data_url": f"{_SITE}/my-data"},
    "verification": {"link": f"{_SITE}/verify?token=sample.token"},
    "reset": {"link": f"{_SITE}/reset?token=sample.token"},
    "newsletter": {"title": "News of the month", "body": "Hello,\n\nthis is what changed.\nAnd <this> stays text.",
                   "unsubscribe_url": _UNSUBSCRIBE},
    "policy_change": {"title": "Survey partner", "summary": "We now name our survey provider.", "version": 8,
                      "effective_on": _WHEN, "unsubscribe_url": _UNSUBSCRIBE},
    "order_update": {"order_id": "A-10042", "status": "shipped", "occurred_at": _WHEN,
                     "my_data_url": f"{_SITE}/my-data"},
    "inquiry_reply": {"reference": "Q-7K3M9P", "body": "Thank you for asking.\n\nYour data stays with us.",
                      "reply_url": f"{_SITE}/contact/reply?inquiry=00000000-0000-0000-0000-000000000000&token=sample"},
}
