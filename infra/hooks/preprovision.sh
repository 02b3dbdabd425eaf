#!/bin/sh
# azd pre-provision hook: checks what `azd up` needs from the admin and makes the callback
# signing key once (kept in the azd environment, then in Key Vault). docs/deploy.md, step 4.
set -eu

missing=""
for name in DATAVERSE_URL DATAVERSE_CLIENT_ID API_AUDIENCE PANEL_CLIENT_ID; do
  value=$(azd env get-value "$name" 2>/dev/null || true)
  [ -n "$value" ] || missing="$missing $name"
done
if [ -n "$missing" ]; then
  echo "Set these first (azd env set NAME value):$missing" >&2
  echo "They come from the app registrations of docs/deploy.md, steps 1-3." >&2
  exit 1
fi

if [ -z "$(azd env get-value CALLBACK_SECRET 2>/dev/null || true)" ]; then
  # 48 random bytes, base64: the key that signs each call's ACS callback URL (32+ characters).
  azd env set CALLBACK_SECRET "$(openssl rand -base64 48 | tr -d '\n')"
  echo "CALLBACK_SECRET generated (stored in the azd environment and in Key Vault)."
fi

for file in infra/settings/agents.json infra/settings/service-pools.json infra/settings/callback-lists.json; do
  [ -f "$file" ] || { echo "$file is missing (see docs/deploy.md, step 5)" >&2; exit 1; }
done
