from pydantic import Field, field_validator

from assent_shared.settings import ServiceSettings


class PolicySettings(ServiceSettings):
    service_name: str = "policy"
    policy_id: str = Field(
        default="privacy", pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$",
        description="The site's policy: seeded at start, shown in the notice, accepted at signup and by continued use.",
    )
    notice_days: float = Field(default=30, ge=0, le=3650,
                               description="How long after a change takes effect the main-page notice shows.")
    notice_max_age_seconds: int = Field(default=60, ge=0, description="Cache-Control max-age of GET /v1/notice.")
    notice_link: str = Field(
        default="/v1/policies/{policy_id}/versions/{version}",
        description="Where the notice links to; {policy_id} and {version} are filled in.",
    )
    schedule_poll_seconds: float = Field(default=1.0, gt=0, le=60,
                                         description="How often scheduled versions are checked.")

    @field_validator("notice_link")
    @classmethod
    def _fillable(cls, link: str) -> str:
        # A typo in the template must stop the start, not fail every notice request.
        try:
            link.format(policy_id="privacy", version=1)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError("notice_link may use only {policy_id} and {version}") from exc
        return link
