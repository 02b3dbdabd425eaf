"""App settings: typed, defaulted, and every problem reported at once."""

from __future__ import annotations

import json
import re
from dataclasses import fields
from pathlib import Path

import pytest

from shared.config import SETTINGS, ConfigError, Settings, check_settings, load_settings

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


def local_values() -> dict[str, str]:
    return json.loads((ROOT / "local.settings.json").read_text())["Values"]


def test_the_committed_local_settings_are_valid() -> None:
    settings = load_settings(local_values())
    assert settings.phone_default_region == "FI"
    assert settings.http_timeout_seconds == 15  # a default


def test_a_non_numeric_value_is_named_with_the_reason() -> None:
    values = {**local_values(), "HTTP_TIMEOUT_SECONDS": "soon"}
    with pytest.raises(ConfigError) as caught:
        load_settings(values)
    assert caught.value.problems == ["HTTP_TIMEOUT_SECONDS must be a whole number, got 'soon'"]


def test_every_bad_setting_is_named_in_one_error() -> None:
    values = {
        **local_values(),
        "HTTP_TIMEOUT_SECONDS": "0",
        "DATAVERSE_URL": "http://x",
        "PHONE_DEFAULT_REGION": "Finland",
    }
    del values["ENTRA_TENANT_ID"]
    with pytest.raises(ConfigError) as caught:
        load_settings(values)
    message = str(caught.value)
    for name in (
        "HTTP_TIMEOUT_SECONDS",
        "DATAVERSE_URL",
        "PHONE_DEFAULT_REGION",
        "ENTRA_TENANT_ID",
    ):
        assert name in message
    assert len(caught.value.problems) == 4


def test_start_up_checks_every_setting_but_the_json_lists_of_models() -> None:
    assert [s.env for s in SETTINGS.values() if s.on_first_use] == [
        "AGENTS",
        "SERVICE_POOLS",
        "CALLBACK_LISTS",
        "ENTERPRISE_USERS",
    ]
    check_settings(local_values())
    values = {**local_values(), "HTTP_TIMEOUT_SECONDS": "soon", "GRAPH_SUBSCRIPTION_MINUTES": "60"}
    del values["ENTRA_TENANT_ID"]
    with pytest.raises(ConfigError) as caught:
        check_settings(values)
    assert caught.value.problems == [
        "ENTRA_TENANT_ID is missing",
        "HTTP_TIMEOUT_SECONDS must be a whole number, got 'soon'",
        "GRAPH_SUBSCRIPTION_RENEW_MINUTES must be less than GRAPH_SUBSCRIPTION_MINUTES",
    ]


def test_a_bad_json_list_passes_start_up_and_is_named_on_first_use() -> None:
    values = {**local_values(), "AGENTS": "[{", "CALLBACK_LISTS": "[]"}
    check_settings(values)
    with pytest.raises(ConfigError) as caught:
        load_settings(values)
    assert [p.split()[0] for p in caught.value.problems] == ["AGENTS", "CALLBACK_LISTS"]


def test_a_secret_never_appears_in_errors_or_repr() -> None:
    secret_key = "bm90LWJhc2U2NCEh!!"
    values = {
        **local_values(),
        "ACS_CONNECTION_STRING": f"endpoint=https://x.example;accesskey={secret_key}",
    }
    with pytest.raises(ConfigError) as caught:
        load_settings(values)
    assert secret_key not in str(caught.value)
    settings = load_settings(local_values())
    assert local_values()["DATAVERSE_CLIENT_SECRET"] not in repr(settings)


def test_an_acs_endpoint_with_a_trailing_slash_is_refused() -> None:
    values = {
        **local_values(),
        "ACS_CONNECTION_STRING": "endpoint=https://x.example/;accesskey=a2V5",
    }
    with pytest.raises(ConfigError, match="must not end with '/'"):
        load_settings(values)


def test_the_settings_type_has_a_field_for_every_setting() -> None:
    assert {f.name for f in fields(Settings)} == {name.lower() for name in SETTINGS}


def test_docs_list_every_setting_and_no_other() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text()
    documented = set(re.findall(r"^\| `([A-Za-z_]+)` \|", doc, re.MULTILINE))
    assert documented == set(SETTINGS)


def test_the_docs_table_is_the_one_generated_from_the_declarations() -> None:
    from scripts.config_docs import END, START, table

    doc = (ROOT / "docs" / "configuration.md").read_text()
    assert doc.split(START, 1)[1].split(END, 1)[0].strip() == table()


def test_each_setting_is_declared_once_on_its_field() -> None:
    declared = {s.attr: s for s in SETTINGS.values()}
    assert [f.name for f in fields(Settings)] == list(declared)
    assert SETTINGS["AzureWebJobsStorage"].attr == "azurewebjobsstorage"
    assert SETTINGS["DIRECT_RING_SECONDS"].kind == "int"
    assert SETTINGS["AGENTS"].kind == "tuple[Agent, ...]"
    assert [s.env for s in SETTINGS.values() if s.secret] == [
        "ACS_CONNECTION_STRING",
        "DATAVERSE_CLIENT_SECRET",
        "CALLBACK_SECRET",
        "ALARM_TEAMS_WEBHOOK_URL",
    ]


def test_the_subscription_renewal_window_must_be_shorter_than_its_lifetime() -> None:
    values = {
        **local_values(),
        "GRAPH_SUBSCRIPTION_MINUTES": "600",
        "GRAPH_SUBSCRIPTION_RENEW_MINUTES": "600",
    }
    with pytest.raises(ConfigError) as error:
        load_settings(values)
    assert "GRAPH_SUBSCRIPTION_RENEW_MINUTES must be less than" in str(error.value)
    assert load_settings({**values, "GRAPH_SUBSCRIPTION_RENEW_MINUTES": "120"})


def test_the_default_owner_is_a_guid_or_empty() -> None:
    owner = "AAAAAAAA-0000-4000-8000-0000000000FF"
    assert (
        load_settings(
            {**local_values(), "ENTERPRISE_DEFAULT_OWNER": owner}
        ).enterprise_default_owner
        == owner.lower()
    )
    assert load_settings(local_values()).enterprise_default_owner == ""
    with pytest.raises(ConfigError) as error:
        load_settings({**local_values(), "ENTERPRISE_DEFAULT_OWNER": "anna"})
    assert "ENTERPRISE_DEFAULT_OWNER must be a GUID" in str(error.value)


def test_alarm_e_mail_needs_sender_and_recipients_and_the_webhook_is_never_echoed() -> None:
    values = {**local_values(), "ALARM_EMAIL_SENDER": "DoNotReply@alarms.contoso.example"}
    with pytest.raises(ConfigError) as missing:
        load_settings(values)
    assert any("ALARM_EMAIL_TO" in p for p in missing.value.problems)
    values["ALARM_EMAIL_TO"] = "duty@contoso.example, not-an-address"
    with pytest.raises(ConfigError) as wrong:
        load_settings(values)
    assert any("ALARM_EMAIL_TO" in p for p in wrong.value.problems)
    secret_url = "http://hooks.example/workflows/abc?sig=s3cr3t"
    with pytest.raises(ConfigError) as plain:
        load_settings({**local_values(), "ALARM_TEAMS_WEBHOOK_URL": secret_url})
    assert "ALARM_TEAMS_WEBHOOK_URL must be an https URL" in str(plain.value)
    assert "s3cr3t" not in str(plain.value)
    ok = load_settings({**values, "ALARM_EMAIL_TO": "duty@contoso.example,boss@contoso.example"})
    assert ok.alarm_email_to == ("duty@contoso.example", "boss@contoso.example")
