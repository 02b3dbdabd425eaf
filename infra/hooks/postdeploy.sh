#!/bin/sh
# azd post-deploy hook: once the code answers, subscribe the ACS events to its webhooks
# (infra/events.bicep). Event Grid validates a webhook when it is subscribed, so this runs after
# the deployment and waits for the app first. Idempotent: a second run changes nothing.
set -eu

: "${AZURE_RESOURCE_GROUP:?run through azd (azd up / azd deploy)}"
: "${FUNCTION_APP_NAME:?}" "${ACS_EVENTS_TOPIC_NAME:?}" "${PUBLIC_BASE_URL:?}"

# Wait (bounded) until our code serves requests: /api/health is anonymous and answers JSON, 200
# or 503 when a dependency is down (the webhooks answer the handshake either way); the
# platform's own answers while the host starts are not JSON.
served() {
  answer=$(curl --silent --output /dev/null --max-time 20 \
    --write-out '%{http_code} %{content_type}' "$PUBLIC_BASE_URL/api/health" || true)
  case "$answer" in
    200\ *json* | 503\ *json*) return 0 ;;
    *) return 1 ;;
  esac
}
attempts=${POSTDEPLOY_WAIT_ATTEMPTS:-30}
pause=${POSTDEPLOY_WAIT_SECONDS:-10}
attempt=0
until served; do
  attempt=$((attempt + 1))
  if [ "$attempt" -ge "$attempts" ]; then
    echo "$PUBLIC_BASE_URL/api/health did not answer; see Application Insights, then run azd hooks run postdeploy" >&2
    exit 1
  fi
  sleep "$pause"
done

numbers=$(az deployment group create \
  --resource-group "$AZURE_RESOURCE_GROUP" \
  --name acs-events \
  --template-file infra/events.bicep \
  --parameters functionAppName="$FUNCTION_APP_NAME" systemTopicName="$ACS_EVENTS_TOPIC_NAME" \
  --query "properties.outputs.subscribedNumbers.value" --output tsv)

if [ -z "$numbers" ]; then
  echo "No number in infra/settings/service-pools.json or agents.json: IncomingCall is not subscribed." >&2
  echo "Add your ACS numbers there (E.164) and run: azd provision && azd deploy" >&2
else
  echo "IncomingCall subscribed for:" $numbers
fi
echo "RecordingFileStatusUpdated subscribed."
