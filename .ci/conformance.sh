#!/usr/bin/env bash
# Runs the official MCP conformance suite (@modelcontextprotocol/conformance, pinned) against
# `mission serve --http --no-auth` on a free 127.0.0.1 port. Exits non-zero when any scenario
# fails or warns, or when the server does not come up.
#
# Usage: .ci/conformance.sh            (from anywhere; needs node >= 20, npm, and the venv)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

CONFORMANCE_VERSION="0.1.12"
SCENARIOS=(server-initialize ping tools-list resources-list prompts-list dns-rebinding-protection)
PYTHON="$ROOT/.venv/bin/python"
MISSION="$ROOT/.venv/bin/mission"
PREFIX="$ROOT/.ci"
BIN="$PREFIX/node_modules/.bin/conformance"
READY_DEADLINE_SECS=60

installed_version() {
    node -p "require('$PREFIX/node_modules/@modelcontextprotocol/conformance/package.json').version" \
        2>/dev/null || true
}

if [[ "$(installed_version)" != "$CONFORMANCE_VERSION" ]]; then
    echo "installing @modelcontextprotocol/conformance@$CONFORMANCE_VERSION into $PREFIX/node_modules" >&2
    # --no-save/--no-package-lock: the folder is a tool cache, not a package of ours.
    npm install --prefix "$PREFIX" --no-save --no-package-lock --no-audit --no-fund \
        "@modelcontextprotocol/conformance@$CONFORMANCE_VERSION" >&2
fi

WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

PORT="$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
URL="http://127.0.0.1:$PORT/mcp"

# The simulated provider and no dispatcher: the suite only lists and pings, nothing is dialled.
env -u TELNYX_API_KEY "$MISSION" serve --http --no-auth --host 127.0.0.1 --port "$PORT" \
    --db "$WORK/conformance.db" --simulate --no-dispatcher >"$WORK/server.out" 2>"$WORK/server.log" &
SERVER_PID=$!

if ! "$PYTHON" - "$PORT" "$READY_DEADLINE_SECS" "$SERVER_PID" <<'EOF'
import os, socket, sys, time
port, deadline, pid = int(sys.argv[1]), time.monotonic() + float(sys.argv[2]), int(sys.argv[3])
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit("server exited before it was ready")
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(f"server not ready on port {port} before the deadline")
EOF
then
    echo "--- server log ---" >&2
    cat "$WORK/server.log" >&2
    exit 1
fi

failed=()
for scenario in "${SCENARIOS[@]}"; do
    echo "=== $scenario ==="
    if "$BIN" server --url "$URL" --scenario "$scenario" >"$WORK/$scenario.txt" 2>&1 \
        && grep -q ", 0 failed, 0 warnings" "$WORK/$scenario.txt"; then
        grep -E "Passed: " "$WORK/$scenario.txt" || true
    else
        cat "$WORK/$scenario.txt"
        failed+=("$scenario")
    fi
done

if [[ -s "$WORK/server.out" ]]; then
    echo "server wrote to stdout (it must log to stderr only):" >&2
    head -20 "$WORK/server.out" >&2
    failed+=("stdout-clean")
fi

if ((${#failed[@]})); then
    echo "conformance FAILED: ${failed[*]}" >&2
    echo "--- server log (tail) ---" >&2
    tail -40 "$WORK/server.log" >&2
    exit 1
fi
echo "conformance passed: ${#SCENARIOS[@]} scenarios (${SCENARIOS[*]})"
