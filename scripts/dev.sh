#!/usr/bin/env bash
# make dev: Azurite on its default ports (data in .azurite/) and the local runner on :7071 (or $PORT).
# make demo (--demo): the same, with a month of demo history seeded first and a local Dataverse.
set -euo pipefail
cd "$(dirname "$0")/.."

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
PORT="${PORT:-7071}"
# (The runner makes the demo portal's hosts in local.settings.json follow the port: `dci serve --port`.)
# What answers on a storage port: Azurite names itself in its Server header ("Azurite-Queue/3.x").
is_azurite() {
  .venv/bin/python - "$1" <<'PY'
import sys, urllib.error, urllib.request
try:
    server = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/devstoreaccount1?comp=list", timeout=3).headers
except urllib.error.HTTPError as error:
    server = error.headers
except OSError:
    sys.exit(1)
sys.exit(0 if "azurite" in (server.get("Server") or "").lower() else 1)
PY
}

if port_open 10001; then
  if ! is_azurite 10001; then
    echo "Something that is not Azurite is listening on 127.0.0.1:10001 (Azurite's queue port); stop it and run again." >&2
    exit 1
  fi
  echo "Azurite is already listening on 10000-10002; using it."
else
  mkdir -p .azurite
  # Its own session: Ctrl-C reaches the runner only, and Azurite gets one clean SIGTERM on exit
  # (a second signal while it closes leaves it hanging).
  setsid node_modules/.bin/azurite --silent --skipApiVersionCheck --location .azurite \
    >.azurite/azurite.log 2>&1 &
  azurite_pid=$!
  stop_azurite() {
    kill -TERM "$azurite_pid" 2>/dev/null || return 0
    for _ in $(seq 50); do kill -0 "$azurite_pid" 2>/dev/null || return 0; sleep 0.1; done
    kill -KILL "$azurite_pid" 2>/dev/null || true
  }
  trap stop_azurite EXIT
  for _ in $(seq 100); do port_open 10002 && break; sleep 0.1; done
  port_open 10002 || { echo "Azurite did not start; see .azurite/azurite.log" >&2; exit 1; }
  echo "Azurite: blob :10000, queue :10001, table :10002 (data in .azurite/)"
fi

if [ "${1:-}" = "--demo" ]; then
  # A month of made-up history first, so the insights dashboard has something to show (days seeded
  # before are skipped; `python -m dci demo seed --remove` takes it out). `make dev` does not seed.
  .venv/bin/python -m dci demo seed --port "$PORT" ||
    echo "The demo history could not be seeded (see above); starting without it." >&2
fi

cat <<MSG

  Demo portal       http://127.0.0.1:$PORT/          (sign in at /signin)
  Collect endpoint  http://127.0.0.1:$PORT/api/collect
  Health            http://127.0.0.1:$PORT/api/health
  OpenAPI           http://127.0.0.1:$PORT/api/openapi.json
  Case report       http://127.0.0.1:$PORT/api/cases/{ticket number}/timeline?format=html
  Insights          http://127.0.0.1:$PORT/api/insights?format=html
MSG
if [ "${1:-}" = "--demo" ]; then
  cat <<MSG
  Local Dataverse   http://127.0.0.1:$((PORT + 1))/notes     (the notes and Portal visits written on cases)

  Demo: sign in at /signin, read and search, then create a case: 15 s later its note and its
  Portal visits are at /notes and the confirmation page links to the agent's report.
MSG
fi
cat <<MSG

  Ctrl-C stops everything.
MSG
.venv/bin/python -m dci serve --host 127.0.0.1 --port "$PORT" "$@"
