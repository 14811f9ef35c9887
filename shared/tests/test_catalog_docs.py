"""The event catalog: its generated docs are current, and every event is frozen and fully described."""

import json
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from assent_shared import catalog_docs, topics
from assent_shared.events import (
    CATALOG, ERASURE_TOPICS, FIRST_PARTY, ConsentGranted, ErasureConfirmed, InquiryClosed, OrderStatusChanged, PageViewed,
    ProcessorRegistered,
)

REPO = Path(__file__).resolve().parents[2]
EVENTS = sorted(CATALOG.items())


def test_the_committed_event_docs_are_what_the_code_generates(capsys):
    assert catalog_docs.main(["--check", "--root", str(REPO)]) == 0, capsys.readouterr().err


def test_the_check_reports_changed_missing_and_stale_files(tmp_path, capsys):
    assert catalog_docs.main(["--root", str(tmp_path)]) == 0
    assert catalog_docs.main(["--check", "--root", str(tmp_path)]) == 0
    docs = tmp_path / "docs" / "events"
    (docs / "schemas" / "UserErased.json").write_text("{}\n")
    (docs / "schemas" / "PageViewed.json").unlink()
    (docs / "schemas" / "UserDeleted.json").write_text("{}\n")
    capsys.readouterr()
    assert catalog_docs.main(["--check", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "out of date: docs/events/schemas/UserErased.json" in err
    assert "missing: docs/events/schemas/PageViewed.json" in err
    assert "stale (no such event): docs/events/schemas/UserDeleted.json" in err
    assert "make docs" in err
    assert catalog_docs.main(["--root", str(tmp_path)]) == 0  # regenerating repairs all three
    assert catalog_docs.main(["--check", "--root", str(tmp_path)]) == 0
    assert not (docs / "schemas" / "UserDeleted.json").exists()


def test_generation_is_deterministic():
    first, second = catalog_docs.render(), catalog_docs.render()
    assert first == second
    assert all(content.endswith("}\n") for content in first.values())
    for content in first.values():
        assert content == json.dumps(json.loads(content), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


@pytest.mark.parametrize(("name", "model"), EVENTS, ids=[name for name, _ in EVENTS])
def test_every_event_is_frozen_and_every_field_is_described(name, model):
    assert model.__name__ == name
    assert model.model_config.get("frozen") is True
    instance = model.model_construct()
    with pytest.raises(ValidationError, match="frozen"):
        setattr(instance, next(iter(model.model_fields)), "changed")
    undescribed = [field for field, info in model.model_fields.items() if not (info.description or "").strip()]
    assert undescribed == []
    on = model.travels_on()
    assert set(on) <= set(topics.ALL) and on[0].source.startswith("/assent/")
    assert model.key_field in model.model_fields, f"{name}: key field {model.key_field!r} is not a field"
    assert model.subject_field in (None, *model.model_fields), f"{name}: subject field {model.subject_field!r}"


@pytest.mark.parametrize(("name", "model"), EVENTS, ids=[name for name, _ in EVENTS])
def test_each_schema_file_is_a_valid_schema_of_the_event_with_its_topic_and_type(name, model):
    schema = json.loads((REPO / "docs" / "events" / "schemas" / f"{name}.json").read_text())
    Draft202012Validator.check_schema(schema)
    assert (schema["x-topic"], schema["x-ce-type"], schema["x-ce-source"]) == (
        model.travels_on()[0].name, name, model.travels_on()[0].source)
    assert schema["title"] == name
    assert set(schema["properties"]) == {info.alias or field for field, info in model.model_fields.items()}
    assert all(prop.get("description") for prop in schema["properties"].values())


def test_what_producers_send_validates_against_the_published_schemas():
    now = datetime.now(UTC)
    samples = [
        ConsentGranted(subject_id=uuid4(), purpose="newsletter", recipient="first_party", seq=1, policy_version=1,
                       source="signup", occurred_at=now),
        PageViewed(site_id="main", path="/", browser="Firefox", os="Linux", device_type="desktop",
                   visitor_hash="abc", occurred_at=now),
        ProcessorRegistered(processor_id="survey-co", name="Survey Co", purposes=("surveys",)),
    ]
    for event in samples:
        name = type(event).__name__
        schema = json.loads((REPO / "docs" / "events" / "schemas" / f"{name}.json").read_text())
        validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
        validator.validate(json.loads(event.model_dump_json()))
        broken = {**json.loads(event.model_dump_json()), schema["required"][0]: None}
        assert not validator.is_valid(broken)


def test_the_asyncapi_document_has_a_channel_and_a_send_operation_per_event():
    document = json.loads((REPO / "docs" / "events" / "asyncapi.json").read_text())
    assert document["asyncapi"] == "3.0.0"
    assert document["info"]["title"] == "Assent events" and document["info"]["version"] == "1.0.0"
    schemas = document["components"]["schemas"]
    assert set(CATALOG) <= set(schemas)
    for name, model in EVENTS:
        key = f"{model.travels_on()[0].name}:{name}"
        assert document["channels"][key]["address"] == model.travels_on()[0].name
        assert document["operations"][key]["action"] == "send"
        message = document["components"]["messages"][f"{key}:Message"]
        assert message["payload"] == {"$ref": f"#/components/schemas/{name}"}
        assert message["headers"] == {"$ref": "#/components/schemas/CloudEventsHeaders"}
        assert set(schemas[name]["properties"]) == set(model.model_fields)
    headers = schemas["CloudEventsHeaders"]
    assert set(headers["required"]) == {"ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "content-type"}
    assert headers["properties"]["ce_specversion"]["const"] == "1.0"
    assert headers["properties"]["content-type"]["const"] == "application/json"


def test_an_event_is_keyed_and_subjected_by_the_fields_it_declares():
    now = datetime.now(UTC)
    user, inquiry = uuid4(), uuid4()
    granted = ConsentGranted(subject_id=user, purpose="newsletter", recipient=FIRST_PARTY, seq=1, policy_version=1,
                             source="signup", occurred_at=now)
    assert (granted.key(), granted.subject(), granted.source_uri()) == (str(user), str(user), "/assent/consent")
    page = PageViewed(site_id="main", path="/", browser="b", os="o", device_type="desktop", visitor_hash="h",
                      occurred_at=now)
    assert (page.key(), page.subject(), page.source_uri()) == ("main", None, "/assent/telemetry")
    anonymous = InquiryClosed(inquiry_id=inquiry, closed_at=now)
    assert (anonymous.key(), anonymous.subject()) == (str(inquiry), None)
    order = OrderStatusChanged(order_id="A-1", user_id=user, status="paid", occurred_at=now)
    assert (order.key(), order.subject(), order.source_uri()) == ("A-1", str(user), "/assent/orders")


@pytest.mark.parametrize("service", sorted(ERASURE_TOPICS))
def test_an_erasure_confirmation_travels_on_its_services_topic_from_that_service(service):
    user = uuid4()
    confirmed = ErasureConfirmed(user_id=user, service=service, confirmed_at=datetime.now(UTC))
    assert confirmed.topic_spec() == ERASURE_TOPICS[service]
    assert confirmed.source_uri() == f"/assent/{service}"
    assert confirmed.key() == confirmed.subject() == str(user)
