"""The deployment (azure.yaml, infra/*.bicep) agrees with the code: every setting the app declares
reaches it, storage is reached by identity only, the Event Grid subscriptions target webhook
routes that exist with Microsoft's advised filter, and CORS lets the D365 organisation in.

No Bicep compiler can be installed here, so this reads the Bicep text itself (tests/bicep_text.py).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml

from shared.config import SETTINGS
from shared.domain.directory import parse_agents, parse_pools
from tests.bicep_text import BicepFile

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"

# Settings the platform reads (not shared/config.py): identity-based storage for the host's
# triggers and for our adapters, Application Insights for the host and the OpenTelemetry distro.
PLATFORM_SETTINGS = {
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    "AzureWebJobsStorage__blobServiceUri",
    "AzureWebJobsStorage__queueServiceUri",
    "AzureWebJobsStorage__tableServiceUri",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    "PYTHON_ENABLE_OPENTELEMETRY",
}
# The web phone panel's sign-in client id, read by the panel's page; set here for it.
PANEL_SETTINGS = {"PANEL_CLIENT_ID"}
# Flex Consumption refuses these as app settings (it sets the runtime from functionAppConfig).
FLEX_REFUSED = {
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_EXTENSION_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "WEBSITE_CONTENTSHARE",
    "AzureWebJobsStorage",  # the connection-string form
    # The worker would configure Azure Monitor a second time (the app does it in code).
    "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY",
}
ROLE_IDS = {
    "blob": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",  # Storage Blob Data Owner
    "queue": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",  # Storage Queue Data Contributor
    "table": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",  # Storage Table Data Contributor
}


@pytest.fixture(scope="module")
def resources() -> BicepFile:
    return BicepFile.read(INFRA / "resources.bicep")


@pytest.fixture(scope="module")
def events() -> BicepFile:
    return BicepFile.read(INFRA / "events.bicep")


@pytest.fixture(scope="module")
def app_settings(resources: BicepFile) -> dict[str, str]:
    block = resources.resource("appSettings")
    assert block.type.startswith("Microsoft.Web/sites/config@")
    assert block.properties()["name"] == "'appsettings'"
    return block.object("properties")


def routes() -> dict[str, tuple[str, str]]:
    """route -> (Python function name, auth level), as functions.invocation.endpoint
    registered them (every HTTP route of functions/ is declared that way)."""
    from functions.invocation import Auth
    from functions.openapi import operations

    return {
        op.route: (op.name, "FUNCTION" if op.auth == Auth.FUNCTION_KEY else "ANONYMOUS")
        for op in operations()
    }


def timer_settings() -> set[str]:
    """The %NAME% settings the host resolves in timer schedules."""
    text = "\n".join(p.read_text() for p in (ROOT / "functions").glob("*.py"))
    return set(re.findall(r'schedule="%(\w+)%"', text))


# ---------------------------------------------------------------- settings


def test_every_required_setting_is_set_in_azure(app_settings: dict[str, str]) -> None:
    required = {name for name, s in SETTINGS.items() if s.default is None}
    assert required, "shared/config.py declares required settings"
    missing = sorted(required - set(app_settings))
    assert missing == [], f"required settings without a value in infra: {missing}"


def test_every_timer_schedule_the_host_resolves_is_an_app_setting(
    app_settings: dict[str, str],
) -> None:
    names = timer_settings()
    assert names >= {"HOUSEKEEPING_SCHEDULE", "CALLBACK_POLL_SCHEDULE"}
    assert sorted(names - set(app_settings)) == []


def test_every_setting_in_azure_is_one_the_code_or_platform_reads(
    app_settings: dict[str, str],
) -> None:
    known = set(SETTINGS) | PLATFORM_SETTINGS | PANEL_SETTINGS
    assert sorted(set(app_settings) - known) == [], "a misspelt or dead setting"
    assert sorted(set(app_settings) & FLEX_REFUSED) == []


def test_the_set_values_pass_the_apps_own_validation(app_settings: dict[str, str]) -> None:
    for name, raw in app_settings.items():
        if name in SETTINGS and raw.startswith("'") and "${" not in raw and "@Microsoft" not in raw:
            SETTINGS[name].parse(raw.strip("'"))  # raises ValueError on a bad literal


def test_acs_is_reached_by_the_identity_not_a_key(
    resources: BicepFile, app_settings: dict[str, str]
) -> None:
    assert "ACS_CONNECTION_STRING" not in app_settings
    assert app_settings["ACS_ENDPOINT"] == "'https://${acs.properties.hostName}'"
    assert app_settings["AZURE_CLIENT_ID"] == "identity.properties.clientId"
    role = resources.resource("acsRole")
    assert role.properties()["scope"] == "acs"
    assert role.object("properties")["principalId"] == "identity.properties.principalId"


def test_secrets_are_key_vault_references(app_settings: dict[str, str]) -> None:
    secrets = [name for name, s in SETTINGS.items() if s.secret and name in app_settings]
    assert "DATAVERSE_CLIENT_SECRET" in secrets and "CALLBACK_SECRET" in secrets
    for name in secrets:
        assert app_settings[name].startswith("'@Microsoft.KeyVault("), name


def test_the_directory_files_are_valid_settings() -> None:
    agents = (INFRA / "settings" / "agents.json").read_text()
    pools = (INFRA / "settings" / "service-pools.json").read_text()
    parse_agents(agents)
    parse_pools(pools)
    json.loads((INFRA / "settings" / "callback-lists.json").read_text())


# ---------------------------------------------------------------- storage by identity only


def test_no_storage_key_or_connection_string_appears_anywhere() -> None:
    files = [*INFRA.rglob("*.bicep"), *INFRA.rglob("*.json"), *INFRA.rglob("*.sh")]
    files.append(ROOT / "azure.yaml")
    for path in files:
        text = path.read_text()
        for marker in ("AccountKey", "DefaultEndpointsProtocol", "UseDevelopmentStorage"):
            assert marker not in text, f"{marker} in {path.name}"
    for path in INFRA.rglob("*.bicep"):
        bicep = BicepFile.read(path)
        # listKeys only on function keys (Event Grid's webhook code); no account or ACS key.
        for target in re.findall(r"(\w+)\.listKeys\(", bicep.code):
            assert bicep.resource(target).type.split("@")[0] == "Microsoft.Web/sites/functions", (
                f"{path.name}: listKeys on {target}"
            )
        assert "listKeys(" not in bicep.code.replace(".listKeys()", ""), path.name


def test_storage_refuses_shared_keys_and_the_identity_has_the_data_roles(
    resources: BicepFile, app_settings: dict[str, str]
) -> None:
    storage = resources.resource("storage")
    assert storage.object("properties")["allowSharedKeyAccess"] == "false"
    assert app_settings["AzureWebJobsStorage__credential"] == "'managedidentity'"
    assert app_settings["AzureWebJobsStorage__clientId"] == "identity.properties.clientId"
    for kind in ("blob", "queue", "table"):
        uri = app_settings[f"AzureWebJobsStorage__{kind}ServiceUri"]
        assert uri == f"storage.properties.primaryEndpoints.{kind}"
    assignments = {
        name: block
        for name, block in resources.resources.items()
        if block.type.startswith("Microsoft.Authorization/roleAssignments@")
    }
    role_names = {
        value.strip("'"): f"roles.{name}"
        for name, value in BicepFile.parse_object(resources.variables["roles"]).items()
    }
    for kind, role_id in ROLE_IDS.items():
        matching = [
            b
            for b in assignments.values()
            if role_names[role_id] in b.code
            and b.properties().get("scope") == "storage"
            and b.object("properties")["principalId"] == "identity.properties.principalId"
        ]
        assert len(matching) == 1, f"the app identity lacks the {kind} data role"


# ---------------------------------------------------------------- the Function App


def test_the_app_is_flex_consumption_python_3_11_with_the_user_assigned_identity(
    resources: BicepFile,
) -> None:
    plan = resources.resource("plan").properties()
    assert plan["sku"] == "{ name: 'FC1', tier: 'FlexConsumption' }"
    site = resources.resource("app")
    config = site.object("properties")
    assert config["keyVaultReferenceIdentity"] == "identity.id"
    runtime = BicepFile.parse_object(BicepFile.parse_object(config["functionAppConfig"])["runtime"])
    assert runtime == {"name": "'python'", "version": "'3.11'"}
    deployment = BicepFile.parse_object(config["functionAppConfig"])["deployment"]
    assert "'UserAssignedIdentity'" in deployment and "packageContainer" in deployment


def test_cors_lets_the_d365_organisation_call_the_api(resources: BicepFile) -> None:
    site = resources.resource("app").object("properties")
    site_config = BicepFile.parse_object(site["siteConfig"])
    cors = BicepFile.parse_object(site_config["cors"])
    assert cors["allowedOrigins"] == "union([dataverseUrl], extraCorsOrigins)"
    main = BicepFile.read(INFRA / "main.bicep")
    module_params = main.resource("resources").object("params")
    assert module_params["dataverseUrl"] == "dataverseUrl"  # the org URL the app talks to


# ---------------------------------------------------------------- Event Grid


def subscription(events: BicepFile, name: str) -> tuple[str, dict[str, str]]:
    block = events.resource(name)
    assert block.type.startswith("Microsoft.EventGrid/systemTopics/eventSubscriptions@")
    props = block.object("properties")
    destination = BicepFile.parse_object(props["destination"])
    assert destination["endpointType"] == "'WebHook'"
    url = BicepFile.parse_object(destination["properties"])["endpointUrl"]
    return url, BicepFile.parse_object(props["filter"])


@pytest.mark.parametrize(
    ("resource", "event_type"),
    [
        ("incomingCall", "Microsoft.Communication.IncomingCall"),
        ("recordingStatus", "Microsoft.Communication.RecordingFileStatusUpdated"),
    ],
)
def test_each_subscription_targets_a_webhook_route_that_exists_with_its_function_key(
    events: BicepFile, resource: str, event_type: str
) -> None:
    url, event_filter = subscription(events, resource)
    match = re.fullmatch(
        r"'https://\$\{app\.properties\.defaultHostName\}/api/([\w/]+)"
        r"\?code=\$\{(\w+)\.listKeys\(\)\.default\}'",
        url,
    )
    assert match, url
    route, key_resource = match.groups()
    known = routes()
    assert route in known, f"no function serves /api/{route}"
    function_name, auth_level = known[route]
    assert auth_level == "FUNCTION"  # so the code= key is what lets Event Grid in
    assert events.resource(key_resource).properties()["name"] == f"'{function_name}'"
    assert event_filter["includedEventTypes"] == f"[ '{event_type}' ]"


def test_incoming_call_is_filtered_on_our_numbers_as_microsoft_advises(events: BicepFile) -> None:
    _, event_filter = subscription(events, "incomingCall")
    advanced = BicepFile.parse_object(event_filter["advancedFilters"].strip()[1:-1].strip())
    assert advanced == {
        "operatorType": "'StringIn'",
        "key": "'data.to.PhoneNumber.Value'",
        "values": "numbers",
    }
    # The numbers are the pools' and agents' own, from the files the app settings are made of.
    numbers = events.variables["numbers"]
    assert "p.?numbers" in numbers and "a.?directNumbers" in numbers
    assert events.variables["pools"] == "loadJsonContent('settings/service-pools.json')"
    assert events.variables["agents"] == "loadJsonContent('settings/agents.json')"
    resources = BicepFile.read(INFRA / "resources.bicep")
    assert resources.variables["servicePools"] == "loadTextContent('settings/service-pools.json')"
    assert resources.variables["agents"] == "loadTextContent('settings/agents.json')"


def test_the_validation_handshake_is_answered_by_both_webhooks() -> None:
    # Subscriptions are created after deployment because Event Grid validates the endpoint then.
    from functions.openapi import document
    from shared.views import ValidationAnswer, to_json

    paths = document("test")["paths"]
    for route in ("/acs/incoming", "/acs/recordings"):
        answer = paths[route]["post"]["responses"]["200"]["content"]["application/json"]
        assert {"$ref": "#/components/schemas/ValidationAnswer"} in answer["schema"]["anyOf"]
    assert to_json(ValidationAnswer(validation_response="c")) == {"validationResponse": "c"}


# ---------------------------------------------------------------- azd


def test_azure_yaml_deploys_the_function_app_and_runs_the_hooks() -> None:
    spec = yaml.safe_load((ROOT / "azure.yaml").read_text())
    api = spec["services"]["api"]
    assert {k: api[k] for k in ("project", "language", "host")} == {
        "project": ".",
        "language": "python",
        "host": "function",
    }
    compile_step = api["hooks"]["prepackage"]["posix"]["run"]
    assert "compileall" in compile_step and "unchecked-hash" in compile_step
    assert "node panel/build.mjs" in compile_step  # the panel is served from panel/dist
    resources = BicepFile.read(INFRA / "resources.bicep")
    assert "'azd-service-name': 'api'" in resources.resource("app").properties()["tags"]
    for hook in ("preprovision", "postdeploy"):
        script = ROOT / spec["hooks"][hook]["posix"]["run"]
        assert script.is_file() and os.access(script, os.X_OK), script
    postdeploy = (ROOT / spec["hooks"]["postdeploy"]["posix"]["run"]).read_text()
    assert "--template-file infra/events.bicep" in postdeploy
    assert "/api/health" in postdeploy  # waits for the code before subscribing


def test_every_parameter_without_a_default_gets_a_value() -> None:
    main = BicepFile.read(INFRA / "main.bicep")
    given = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    for name, param in main.params.items():
        if param.default is None:
            assert name in given, f"main.parameters.json lacks {name}"
    assert set(given) <= set(main.params)
    # The module receives exactly the parameters resources.bicep declares.
    resources = BicepFile.read(INFRA / "resources.bicep")
    passed = main.resource("resources").object("params")
    assert set(passed) == set(resources.params)


def test_the_package_leaves_out_what_the_app_does_not_run() -> None:
    ignored = set((ROOT / ".funcignore").read_text().split())
    assert {"tests", "emulators", "local.settings.json", ".venv", "node_modules"} <= ignored
    assert not {"shared", "functions", "function_app.py", "host.json", "__pycache__"} & ignored
