#!/bin/sh
# Container health check: the service is healthy when GET /health/ready answers 200.
# Uses the port and scheme the service was configured with (TLS when a certificate is set).
port="${TOKENS_HTTP_PORT:-4000}"
if [ -n "${TOKENS_TLS_CERT_FILE:-}" ]; then
  exec curl -fsSk --max-time 4 -o /dev/null "https://127.0.0.1:${port}/health/ready"
fi
exec curl -fsS --max-time 4 -o /dev/null "http://127.0.0.1:${port}/health/ready"
