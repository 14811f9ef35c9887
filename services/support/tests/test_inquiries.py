"""Inquiries end to end within support, on real Kafka and PostgreSQL."""

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlparse
from uuid import UUID, uuid4

from assent_shared.events import UserErased
from assent_devtools.testing.helpers import eventually, unique

TOPIC = "support.inquiries.v1"
PERSONAL_COLUMNS = ("email", "body")


def _token(reply_url: str) -> str:
    return parse_qs(urlparse(reply_url).query)["token"][0]


async def test_anonymous_inquiry_with_address_is_answered_in_a_thread(deployment):
    d = await deployment()
    email = f"{unique('ada')}@example.com"
    async with d.app() as client:
        sent = await client.post("/v1/inquiries", json={"topic": "question", "message": "Do you sell my data?",
                                                        "email": email, "locale": "de-CH"})
        assert sent.status_code == 202, sent.text
        inquiry_id, reference = sent.json()["id"], sent.json()["reference"]
        assert reference.startswith("Q-") and len(reference) == 10

        listed = await client.get("/v1/admin/inquiries", params={"status": "open"}, headers=d.admin)
        [row] = [i for i in listed.json() if i["id"] == inquiry_id]
        assert row["email"] == email and row["reply_by_mail"] and row["locale"] == "de" and not row["signed_in"]

        first = await client.post(f"/v1/admin/inquiries/{inquiry_id}/replies", json={"body": "Never."},
                                  headers=d.admin)
        assert first.status_code == 201, first.text
        second = await client.post(f"/v1/admin/inquiries/{inquiry_id}/replies", json={"body": "Really never."},
                                   headers=d.admin)
        answered = await eventually(lambda: _answers(d, inquiry_id, 2))
        assert [a["body"] for a in answered] == ["Never.", "Really never."]
        assert answered[0]["email"] == email and answered[0]["reply_by_mail"] and answered[0]["locale"] == "de"
        assert answered[0]["earlier_replies"] == []
        raw = await d.raw_topic(TOPIC)
        assert email.encode() not in raw and b"Really never" not in raw  # sealed on the topic
        assert answered[1]["earlier_replies"] == [first.json()["id"]]
        assert answered[1]["message_id"] == second.json()["id"]

        token = _token(answered[1]["reply_url"])
        assert (await client.get(f"/v1/inquiries/{inquiry_id}", params={"token": "x" * 43})).status_code == 404
        thread = await client.get(f"/v1/inquiries/{inquiry_id}", params={"token": token})
        assert [m["author"] for m in thread.json()["messages"]] == ["person", "staff", "staff"]
        assert thread.json()["email"] is None  # the person's view never echoes the address

        answer = await client.post(f"/v1/inquiries/{inquiry_id}/messages",
                                   json={"message": "Thanks!", "token": token})
        assert answer.status_code == 201, answer.text
        thread = (await client.get(f"/v1/admin/inquiries/{inquiry_id}", headers=d.admin)).json()
        assert thread["status"] == "open" and thread["messages"][-1]["body"] == "Thanks!"

        closed = await client.post(f"/v1/admin/inquiries/{inquiry_id}/close", headers=d.admin)
        assert closed.json()["status"] == "closed"
        late = await client.post(f"/v1/inquiries/{inquiry_id}/messages", json={"message": "and", "token": token})
        assert late.status_code == 409
        assert (await client.post(f"/v1/admin/inquiries/{inquiry_id}/replies", json={"body": "x"},
                                  headers=d.admin)).status_code == 409

        types = [m.type for m, e in await d.events(TOPIC) if e["inquiry_id"] == inquiry_id]
        assert types == ["InquiryReceived", "InquiryAnswered", "InquiryAnswered", "InquiryFollowedUp",
                         "InquiryClosed"]


async def _answers(d, inquiry_id: str, count: int) -> list[dict] | None:
    found = [e for _, e in await d.events(TOPIC, "InquiryAnswered") if e["inquiry_id"] == inquiry_id]
    return [await d.opened(e) for e in found] if len(found) == count else None


async def test_anonymous_inquiry_without_address_keeps_no_personal_data(deployment):
    d = await deployment()
    marker = unique("no-address-")
    async with d.app() as client:
        sent = await client.post("/v1/inquiries", json={"topic": "feedback", "message": f"Nice site {marker}"})
        assert sent.status_code == 202, sent.text
        inquiry_id = UUID(sent.json()["id"])
        row = (await d.fetch("SELECT * FROM inquiries WHERE inquiry_id = $1", inquiry_id))[0]
        assert row["email"] is None and row["user_id"] is None and not row["want_reply"]
        # The client's address is not stored anywhere: rate limits keep a keyed hash of it.
        for table in ("inquiries", "inquiry_messages", "rate_limits", "topic_counts", "outbox"):
            dump = "\n".join(str(dict(r)) for r in await d.fetch(f"SELECT * FROM {table}"))
            assert "127.0.0.1" not in dump, table
        [(meta, event)] = [(m, e) for m, e in await eventually(lambda: d.events(TOPIC)) if e["inquiry_id"] == str(inquiry_id)]
        assert meta.type == "InquiryReceived" and meta.subject is None
        assert set(event) == {"inquiry_id", "reference", "category", "user_id", "reply_by_mail", "received_at"}
        assert event["user_id"] is None and event["reply_by_mail"] is False
        raw = await d.raw_topic(TOPIC)
        assert marker.encode() not in raw and b"@" not in raw

        reply = await client.post(f"/v1/admin/inquiries/{inquiry_id}/replies", json={"body": "Thank you"},
                                  headers=d.admin)
        assert reply.status_code == 201
        [answered] = await eventually(lambda: _answers(d, str(inquiry_id), 1))
        assert answered["reply_by_mail"] is False and answered["email"] is None


async def test_bad_input_is_a_clear_4xx_and_stores_nothing(deployment):
    d = await deployment(max_message_chars=100)
    async with d.app() as client:
        cases = [
            {"topic": "sales", "message": "hi"},
            {"topic": "question", "message": ""},
            {"topic": "question", "message": "x" * 101},
            {"topic": "question", "message": "nul \x00 here"},
            {"topic": "question", "message": "hi", "email": "not-an-address"},
            {"topic": "question", "message": "hi", "want_reply": True},
            {"topic": "question", "message": "hi", "extra": 1},
            {"topic": "question", "message": "hi", "locale": "../../etc"},
        ]
        for body in cases:
            answer = await client.post("/v1/inquiries", json=body)
            assert answer.status_code == 422, (body, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
            assert "not-an-address" not in answer.text
        not_json = await client.post("/v1/inquiries", content=b"{", headers={"content-type": "application/json"})
        assert not_json.status_code == 422
        assert (await client.post("/v1/inquiries", json={"topic": "question", "message": "hi"},
                                  headers={"Authorization": "Bearer nonsense"})).status_code == 401
        assert (await client.get(f"/v1/inquiries/{uuid4()}")).status_code == 404
        assert (await client.get("/v1/admin/inquiries")).status_code == 401
        assert (await client.get("/v1/admin/feedback", params={"from": "2026-02-01", "to": "2026-01-01"},
                                 headers=d.admin)).status_code == 422
    assert await d.fetchval("SELECT count(*) FROM inquiries") == 0


async def test_spam_trap_answers_as_usual_and_keeps_nothing(deployment):
    d = await deployment()
    async with d.app() as client:
        answer = await client.post("/v1/inquiries", json={"topic": "question", "message": "cheap pills",
                                                          "email": "bot@example.com", "website": "http://spam"})
        assert answer.status_code == 202 and answer.json()["reference"]
    assert await d.fetchval("SELECT count(*) FROM inquiries") == 0
    assert await d.fetchval("SELECT count(*) FROM outbox") == 0


async def test_a_client_is_rate_limited(deployment):
    d = await deployment(rate_limit=2)
    async with d.app() as client:
        for _ in range(2):
            assert (await client.post("/v1/inquiries", json={"topic": "question", "message": "hi"})).status_code == 202
        refused = await client.post("/v1/inquiries", json={"topic": "question", "message": "hi"})
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    assert await d.fetchval("SELECT count(*) FROM inquiries") == 2


async def test_signed_in_user_asks_for_a_reply_and_answers_signed_in(deployment, issuer):
    d = await deployment()
    user, other = uuid4(), uuid4()
    async with d.app() as client:
        with_address = await client.post("/v1/inquiries", headers=issuer.auth(user),
                                         json={"topic": "support_request", "message": "help", "email": "a@example.com"})
        assert with_address.status_code == 422  # signed in, the account's address is used, with want_reply
        sent = await client.post("/v1/inquiries", headers=issuer.auth(user),
                                 json={"topic": "support_request", "message": "help", "want_reply": True})
        inquiry_id = sent.json()["id"]
        quiet = await client.post("/v1/inquiries", headers=issuer.auth(user),
                                  json={"topic": "question", "message": "no mail please"})
        await client.post(f"/v1/admin/inquiries/{inquiry_id}/replies", json={"body": "On it"}, headers=d.admin)
        await client.post(f"/v1/admin/inquiries/{quiet.json()['id']}/replies", json={"body": "Ok"}, headers=d.admin)

        answers = {e["inquiry_id"]: await d.opened(e) for _, e in await eventually(lambda: _answers_all(d, 2))}
        assert answers[inquiry_id]["user_id"] == str(user) and answers[inquiry_id]["reply_by_mail"] is True
        assert answers[inquiry_id]["email"] is None  # the mailer uses the account's current address
        sealed_for = {e["body"]["subject_id"] for _, e in await d.events(TOPIC, "InquiryAnswered")}
        assert sealed_for == {str(user)}  # the user's key: identity's erasure shreds it
        assert answers[quiet.json()["id"]]["reply_by_mail"] is False

        assert (await client.get(f"/v1/inquiries/{inquiry_id}", headers=issuer.auth(other))).status_code == 404
        follow = await client.post(f"/v1/inquiries/{inquiry_id}/messages", headers=issuer.auth(user),
                                   json={"message": "thanks"})
        assert follow.status_code == 201
        mine = await client.get(f"/v1/users/{user}/inquiries", headers=issuer.auth(user))
        assert [t["id"] for t in mine.json()] == [inquiry_id, quiet.json()["id"]]  # oldest first
        first = await client.get(f"/v1/users/{user}/inquiries", headers=issuer.auth(user), params={"limit": 1})
        assert [t["id"] for t in first.json()] == [inquiry_id] and 'rel="next"' in first.headers["link"]
        rest = await client.get(f"/v1/users/{user}/inquiries", headers=issuer.auth(user),
                                params={"limit": 1, "cursor": first.headers["x-next-cursor"]})
        assert [t["id"] for t in rest.json()] == [quiet.json()["id"]] and "x-next-cursor" not in rest.headers
        assert (await client.get(f"/v1/users/{user}/inquiries", headers=issuer.auth(other))).status_code == 403
        [followed] = [e for m, e in await d.events(TOPIC, "InquiryFollowedUp")]
        assert followed["via"] == "signed_in"


async def _answers_all(d, count: int):
    found = await d.events(TOPIC, "InquiryAnswered")
    return found if len(found) == count else None


async def test_the_admin_inbox_pages_newest_first_with_a_cursor(deployment):
    d = await deployment(rate_limit=100)
    topic = "feedback"
    async with d.app() as client:
        sent = [(await client.post("/v1/inquiries", json={"topic": topic, "message": f"note {n}"})).json()["id"]
                for n in range(3)]
        seen: list[str] = []
        params: dict = {"limit": 2, "topic": topic}
        for _ in range(10):
            page = await client.get("/v1/admin/inquiries", params=params, headers=d.admin)
            assert page.status_code == 200 and len(page.json()) <= 2
            seen += [i["id"] for i in page.json()]
            if "x-next-cursor" not in page.headers:
                break
            params = {**params, "cursor": page.headers["x-next-cursor"]}
        mine = [i for i in seen if i in sent]
        assert mine == sent[::-1] and len(seen) == len(set(seen))  # newest first, none twice, none left out
        forged = await client.get("/v1/admin/inquiries", params={"cursor": "WyJ4IiwgInkiXQ"}, headers=d.admin)
        assert forged.status_code == 422 and forged.json()["title"] == "Invalid cursor"


async def test_feedback_view_counts_topics_without_personal_data(deployment):
    d = await deployment(rate_limit=100)
    async with d.app() as client:
        for topic in ("feedback", "feedback", "question"):
            await client.post("/v1/inquiries", json={"topic": topic, "message": "m", "email": "p@example.com"})
        today = datetime.now(UTC).date().isoformat()
        counts = await client.get("/v1/admin/feedback", params={"from": today, "to": today}, headers=d.admin)
        assert counts.status_code == 200
        assert counts.json() == [{"period": today, "topic": "feedback", "count": 2},
                                 {"period": today, "topic": "question", "count": 1}]
        monthly = await client.get("/v1/admin/feedback", params={"bucket": "month"}, headers=d.admin)
        assert sum(c["count"] for c in monthly.json()) == 3
        assert "@" not in counts.text and "@" not in monthly.text


async def test_erasure_removes_the_users_inquiries_and_is_confirmed(deployment, issuer):
    d = await deployment(rate_limit=100)
    user = uuid4()
    async with d.app() as client:
        sent = await client.post("/v1/inquiries", headers=issuer.auth(user),
                                 json={"topic": "privacy_question", "message": "what do you hold", "want_reply": True})
        inquiry_id = sent.json()["id"]
        await client.post(f"/v1/admin/inquiries/{inquiry_id}/replies", json={"body": "Little."}, headers=d.admin)
        await eventually(lambda: _answers(d, inquiry_id, 1))
        await d.publish(UserErased(user_id=user, erased_at=datetime.now(UTC)))

        async def confirmed():
            return [e for m, e in await d.events(TOPIC, "ErasureConfirmed") if e["user_id"] == str(user)]

        [confirmation] = await eventually(confirmed, timeout=30)
        assert confirmation["service"] == "support"
        assert await d.fetchval("SELECT count(*) FROM inquiries WHERE user_id = $1", user) == 0
        assert await d.fetchval("SELECT count(*) FROM inquiry_messages") == 0
        assert await d.fetchval("SELECT count(*) FROM outbox WHERE payload LIKE '%Little.%'") == 0
        assert await d.fetchval("SELECT sum(count) FROM topic_counts") == 1  # the numbers stay, nobody in them
        again = await client.post("/v1/inquiries", headers=issuer.auth(user), json={"topic": "question", "message": "x"})
        assert again.status_code == 403


async def test_anonymous_inquiries_are_erased_by_their_address(deployment):
    d = await deployment(rate_limit=100)
    email = f"{unique('eve')}@example.com"
    async with d.app() as client:
        ids = [(await client.post("/v1/inquiries", json={"topic": "question", "message": f"m{i}",
                                                          "email": email})).json()["id"] for i in range(2)]
        other = (await client.post("/v1/inquiries", json={"topic": "question", "message": "keep",
                                                           "email": "bob@example.com"})).json()["id"]
        erased = await client.post("/v1/admin/erasures", json={"email": email.upper()}, headers=d.admin)
        assert erased.json() == {"erased": 2}
        assert await d.fetchval("SELECT count(*) FROM inquiries WHERE lower(email) = lower($1)", email) == 0
        assert await d.fetchval("SELECT count(*) FROM inquiries WHERE inquiry_id = $1", UUID(other)) == 1

        async def told():
            return {e["inquiry_id"] for _, e in await d.events(TOPIC, "InquiryErased")}

        assert await eventually(lambda: _has(told, set(ids)))
        assert d.keys.erased == {UUID(i) for i in ids}  # what was sealed for them is shredded
        assert await d.fetchval("SELECT count(*) FROM outbox WHERE payload ILIKE $1", f"%{email}%") == 0


async def _has(read, wanted: set) -> bool:
    return wanted <= await read()
