"""Storage and ACS settings: a connection string locally, or identity-based settings as in Azure
(the Functions host's AzureWebJobsStorage__* form; ACS_ENDPOINT); without either the app names
what is missing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.config import ConfigError, load_settings

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


def values(**changes: str) -> dict[str, str]:
    base = json.loads((ROOT / "local.settings.json").read_text())["Values"]
    base.pop("AzureWebJobsStorage")
    return {**base, **changes}


def test_identity_based_storage_with_an_account_name_gives_every_service_uri() -> None:
    s = load_settings(
        values(
            AzureWebJobsStorage__credential="managedidentity",
            AzureWebJobsStorage__accountName="std365phone",
            AzureWebJobsStorage__clientId="0f0f0f0f-0000-4000-8000-000000000001",
        )
    )
    assert s.storage_connection_string == ""
    assert s.storage_uri("table") == "https://std365phone.table.core.windows.net"
    assert s.storage_uri("queue") == "https://std365phone.queue.core.windows.net"
    assert s.storage_uri("blob") == "https://std365phone.blob.core.windows.net"


def test_explicit_service_uris_win_over_the_account_name() -> None:
    s = load_settings(
        values(
            AzureWebJobsStorage__credential="ManagedIdentity",
            AzureWebJobsStorage__tableServiceUri="https://t.example/",
            AzureWebJobsStorage__queueServiceUri="https://q.example",
            AzureWebJobsStorage__blobServiceUri="https://b.example",
        )
    )
    assert (s.storage_uri("table"), s.storage_uri("queue"), s.storage_uri("blob")) == (
        "https://t.example",
        "https://q.example",
        "https://b.example",
    )


def test_no_storage_at_all_is_named() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(values())
    assert any(p.startswith("AzureWebJobsStorage is missing") for p in caught.value.problems)


def test_identity_without_its_uris_names_each_missing_uri() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(values(AzureWebJobsStorage__credential="managedidentity"))
    assert [p.split()[0] for p in caught.value.problems] == [
        "AzureWebJobsStorage__tableServiceUri",
        "AzureWebJobsStorage__queueServiceUri",
        "AzureWebJobsStorage__blobServiceUri",
    ]


def test_an_unknown_credential_kind_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(values(AzureWebJobsStorage__credential="accountkey"))
    assert any("must be managedidentity" in p for p in caught.value.problems)


def test_acs_by_managed_identity_needs_only_its_endpoint() -> None:
    base = values(AzureWebJobsStorage="UseDevelopmentStorage=true")
    base.pop("ACS_CONNECTION_STRING")
    s = load_settings({**base, "ACS_ENDPOINT": "https://acs-x.communication.azure.com/"})
    assert (s.acs_connection_string, s.acs_endpoint) == (
        "",
        "https://acs-x.communication.azure.com",
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(base)
    assert "ACS_CONNECTION_STRING or ACS_ENDPOINT is missing" in caught.value.problems
