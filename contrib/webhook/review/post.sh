#!/bin/sh
# Post payload.json to the "review" source the way a sender must sign it:
#   X-Voc-Timestamp: <Unix seconds>
#   X-Voc-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>
# VOCD_URL (default http://127.0.0.1:8080) and WEBHOOK_SECRET (default: the one in
# source.yaml) override the defaults.
set -eu
cd "$(dirname "$0")"
url=${VOCD_URL:-http://127.0.0.1:8080}/hooks/review
secret=${WEBHOOK_SECRET:-change-me-review-secret}
ts=$(date +%s)
sig=$( { printf '%s.' "$ts"; cat payload.json; } | openssl dgst -sha256 -hmac "$secret" -r | cut -d' ' -f1)
curl -sS -X POST "$url" -H 'Content-Type: application/json' \
     -H "X-Voc-Timestamp: $ts" -H "X-Voc-Signature: sha256=$sig" \
     --data-binary @payload.json -w 'HTTP %{http_code}\n'
