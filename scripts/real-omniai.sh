#!/usr/bin/env bash
# real-omniai.sh: run OmniAI Backups against the real OmniAI backend.
#
# It takes an OmniAI checkout (or exports one commit of a git repository into a temporary folder),
# builds a Python venv from backend/requirements.txt, runs the alembic migrations on a fresh
# SQLite database, starts the API with uvicorn on a free loopback port, fills the database through
# the real HTTP API (users, login with cookies + CSRF, conversations, messages, context blocks),
# performs the ordinary deletes that leave foreign-key orphans (SQLite's foreign_keys is off in
# OmniAI, so ON DELETE CASCADE / SET NULL never fire), and then runs this action's CLI against it:
# backup, verify, drill, restore (backend stopped and started around it), smoke and gate.
#
# Each step prints one result line; the script exits 1 when any step that should pass failed.
# Everything lives in one temporary folder, removed on exit; the processes it started are ended
# on exit. Nothing is written inside this repository. See scripts/README.md.
#
# usage: scripts/real-omniai.sh [--checkout DIR | --repo GIT_DIR [--commit REV]] [options]
set -euo pipefail
trap 'echo "real-omniai.sh: line $LINENO: a setup command failed (exit $?)" >&2' ERR

usage() {
  cat <<'EOF'
usage: scripts/real-omniai.sh [--checkout DIR | --repo GIT_DIR [--commit REV]] [options]

Where OmniAI comes from (one of):
  --checkout DIR   an OmniAI checkout (the folder holding backend/); used in place, read only
  --repo GIT_DIR   a git repository (bare or not) to export --commit from with git archive
                   (default: $OMNIAI_REPO, else /work/.mirror/omniplexity+omniai/repo)
  --commit REV     the commit to export (default: $OMNIAI_COMMIT, else 2d5c13e)

Options:
  --venv DIR       use (or create) this venv instead of a temporary one; it is kept
  --no-orphans     skip the deletes that leave foreign-key orphans, to exercise the whole
                   chain (backup, verify, drill, restore, smoke) on a clean database
  --keep           keep the temporary folder (logs, database, backups) and print its path
  -h, --help       this text

Environment: NODE (Node.js >= 24; default: this repo's node_modules/.bin/node, else node),
PYTHON (Python >= 3.11; default python3), PIP_RETRIES (default 1).
EOF
}

# ---------------------------------------------------------------------------------------------
# Arguments and tools
# ---------------------------------------------------------------------------------------------
ACTION_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CHECKOUT=''
REPO=${OMNIAI_REPO:-/work/.mirror/omniplexity+omniai/repo}
COMMIT=${OMNIAI_COMMIT:-2d5c13e}
VENV=''
ORPHANS=1
KEEP=0
while [ $# -gt 0 ]; do
  case $1 in
    --checkout) CHECKOUT=${2:?--checkout needs a folder}; shift 2 ;;
    --repo) REPO=${2:?--repo needs a git directory}; shift 2 ;;
    --commit) COMMIT=${2:?--commit needs a revision}; shift 2 ;;
    --venv) VENV=${2:?--venv needs a folder}; shift 2 ;;
    --no-orphans) ORPHANS=0; shift ;;
    --keep) KEEP=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "real-omniai.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done

die() { echo "real-omniai.sh: $*" >&2; exit 2; }
say() { printf '%s\n' "$*"; }
section() { printf '\n== %s\n' "$*"; }

if [ -z "${NODE:-}" ]; then
  if [ -x "$ACTION_DIR/node_modules/.bin/node" ]; then NODE=$ACTION_DIR/node_modules/.bin/node; else NODE=node; fi
fi
node_major=$("$NODE" -p 'process.versions.node.split(".")[0]' 2>/dev/null) || die "cannot run Node.js ($NODE); set NODE"
[ "$node_major" -ge 24 ] || die "the action needs Node.js >= 24, $NODE is $("$NODE" --version); set NODE (npm ci installs one in node_modules/.bin)"
[ -f "$ACTION_DIR/dist/index.js" ] || die "$ACTION_DIR/dist/index.js is missing"
PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null ||
  die "OmniAI needs Python >= 3.11; set PYTHON (now: $PYTHON)"
for tool in curl git tar; do command -v "$tool" >/dev/null || die "$tool is not installed"; done
export PIP_RETRIES=${PIP_RETRIES:-1} PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1

# ---------------------------------------------------------------------------------------------
# The temporary folder, and cleaning up on exit (backend and stand-in LLM ended, folder removed)
# ---------------------------------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/real-omniai.XXXXXX")
case $WORK/ in "$ACTION_DIR"/*) rm -rf "$WORK"; die "TMPDIR is inside $ACTION_DIR; point it elsewhere" ;; esac
RUN=$WORK/run        # the backend's working directory, database and logs
LOGS=$WORK/logs      # one log (and JSON report) per step
BIN=$WORK/bin        # generated helper scripts
BACKUPS=$WORK/backups
mkdir -p "$RUN" "$LOGS" "$BIN" "$BACKUPS" "$WORK/scratch"
DB=$RUN/omniai.db
LLM_PID=''

# Ends one process we started (by its pid, from a pid file), waiting for it to exit.
stop_pid_file() {
  local file=$1 pid i
  [ -s "$file" ] || return 0
  pid=$(cat "$file")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_pid_file "$RUN/backend.pid"
  stop_pid_file "$RUN/llm.pid"
  if [ "$KEEP" = 1 ]; then
    say "kept: $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------
# Results: one line per step, and the exit code
# ---------------------------------------------------------------------------------------------
RESULTS=()
FAILED=0
LAST=$SECONDS
# result STATUS STEP DETAIL: STATUS is PASS, FAIL (counts against the exit code), INFO or SKIP.
# The seconds are those since the previous result.
result() {
  local status=$1 step=$2 detail=$3 took=$((SECONDS - LAST))
  LAST=$SECONDS
  [ "$status" = FAIL ] && FAILED=$((FAILED + 1))
  RESULTS+=("$(printf '%-4s  %-14s %4ss  %s' "$status" "$step" "$took" "$detail")")
  printf '[%s] %s (%s s): %s\n' "$status" "$step" "$took" "$detail"
}

# ---------------------------------------------------------------------------------------------
# 1. OmniAI's source
# ---------------------------------------------------------------------------------------------
section "OmniAI source"
if [ -n "$CHECKOUT" ]; then
  SRC=$(cd "$CHECKOUT" && pwd)
  say "checkout: $SRC"
else
  [ -d "$REPO" ] || die "no --checkout given and $REPO does not exist; give --checkout DIR or --repo GIT_DIR"
  SRC=$WORK/omniai
  mkdir -p "$SRC"
  git -C "$REPO" archive "$COMMIT" | tar -x -C "$SRC" # works on bare and non-bare repositories
  say "exported $COMMIT of $REPO into $SRC"
fi
[ -f "$SRC/backend/requirements.txt" ] && [ -f "$SRC/backend/alembic.ini" ] ||
  die "$SRC is not an OmniAI checkout (no backend/requirements.txt or backend/alembic.ini)"

# ---------------------------------------------------------------------------------------------
# 2. The venv, from backend/requirements.txt
# ---------------------------------------------------------------------------------------------
# requirements.txt pins upper bounds (bcrypt<5, httpx<0.28, pytest-asyncio<0.25, ...). When the
# package index cannot satisfy one, pip says "No matching distribution found for NAME...": that
# requirement's upper bound is dropped and pip tries again; a requirement that still cannot be
# met (a dev tool that is not in the index, such as bandit or pip-audit, which neither the app nor
# its tests import) is left out. Every change is printed.
section "venv"
if [ -z "$VENV" ]; then VENV=$WORK/venv; fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PY=$VENV/bin/python
PIP=("$PY" -m pip)
REQ=$SRC/backend/requirements.txt
STAMP=$VENV/.real-omniai-requirements.sha256 # a reused venv already holding these requirements
# name_of REQUIREMENT: the package name, normalized (bcrypt>=4 -> bcrypt, PyJWT[crypto] -> pyjwt).
name_of() { printf '%s' "$1" | sed -E 's/^([A-Za-z0-9_.-]+).*/\1/; s/[_.-]+/-/g' | tr '[:upper:]' '[:lower:]'; }
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(sha256sum <"$REQ")" ]; then
  result PASS venv "reused $VENV (requirements.txt unchanged since it was built)"
else
  reqs=$WORK/requirements.txt # the file without comments; relaxed in place
  sed -E 's/#.*//; s/[[:space:]]+//g; /^$/d' "$REQ" >"$reqs"
  changes=()
  until "${PIP[@]}" install -q -r "$reqs" >"$LOGS/pip.log" 2>&1; do
    missing=$(sed -nE 's/.*No matching distribution found for ([A-Za-z0-9_.-]+).*/\1/p' "$LOGS/pip.log" | head -1)
    line=''
    if [ -n "$missing" ]; then
      while IFS= read -r l; do
        if [ "$(name_of "$l")" = "$(name_of "$missing")" ]; then line=$l; break; fi
      done <"$reqs"
    fi
    if [ -z "$line" ] || [ "${#changes[@]}" -ge 30 ]; then
      grep -E '^ERROR' "$LOGS/pip.log" >&2 || tail -20 "$LOGS/pip.log" >&2
      die "pip cannot install $REQ (after ${#changes[@]} change(s))"
    fi
    loose=$(printf '%s' "$line" | sed -E 's/,?(<=?|~=|==)[^,;]*//g')
    if [ "$loose" != "$line" ]; then
      changes+=("$line -> $loose")
    else
      loose=''
      changes+=("$line left out (no version of it in the index)")
    fi
    say "  relaxed: ${changes[-1]}"
    awk -v old="$line" -v new="$loose" '$0 == old { if (new != "") print new; next } { print }' "$reqs" >"$reqs.new"
    mv "$reqs.new" "$reqs"
  done
  if [ "${#changes[@]}" = 0 ]; then
    result PASS venv "requirements.txt installed as pinned ($("$PY" --version))"
  else
    result PASS venv "installed with ${#changes[@]} requirement(s) relaxed or left out ($("$PY" --version))"
  fi
fi
sha256sum <"$REQ" >"$STAMP"
say "  $("$PY" -m pip list 2>/dev/null | grep -iE '^(fastapi|starlette|sqlalchemy|alembic|bcrypt|httpx|pytest|pytest-asyncio|uvicorn) ' | tr -s ' ' | tr '\n' ',' | sed 's/,$//; s/,/, /g')"

# ---------------------------------------------------------------------------------------------
# 3. Ports, the backend's environment, the helper scripts
# ---------------------------------------------------------------------------------------------
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
LLM_PORT=$(free_port)
while [ "$LLM_PORT" = "$PORT" ]; do LLM_PORT=$(free_port); done
BASE=http://127.0.0.1:$PORT
# OmniAI accepts a cookie-authenticated POST/PUT/PATCH/DELETE under /api/ and /v1/ only with an
# Origin (or Referer) listed in CORS_ORIGINS (its own address is not implied): CORS_ORIGINS lists
# the backend's own address here, and that is the Origin sent.
ORIGIN=$BASE

# The environment every OmniAI process gets (env -i: nothing leaks in from this shell, such as a
# DATABASE_URL_POSTGRES that would win over DATABASE_URL). COOKIE_SECURE=false because this is
# plain http on loopback. The chat provider is a stand-in OpenAI-compatible server (below).
BACKEND_ENV=(
  "PATH=$PATH" "HOME=$RUN" "LANG=C.UTF-8" "PYTHONPATH=$SRC" "PYTHONDONTWRITEBYTECODE=1"
  "ENVIRONMENT=development" "DATABASE_URL=sqlite:///$DB" "COOKIE_SECURE=false"
  "CORS_ORIGINS=$ORIGIN" "MEDIA_STORAGE_PATH=$RUN/uploads" "LOG_LEVEL=INFO"
  "PROVIDERS_ENABLED=openai_compat" "PROVIDER_DEFAULT=openai_compat"
  "OPENAI_COMPAT_BASE_URL=http://127.0.0.1:$LLM_PORT/v1"
)
q() { printf '%q' "$1"; }
env_words() { local v; for v in "${BACKEND_ENV[@]}"; do printf '%q ' "$v"; done; }

# start-backend: uvicorn in its own session (so it outlives whoever started it, e.g. the action's
# start-command), output to backend.log, pid in backend.pid; returns once /readyz answers 200.
cat >"$BIN/start-backend" <<EOF
#!/usr/bin/env bash
# Starts the OmniAI API on $BASE and waits until /readyz answers 200.
set -euo pipefail
cd $(q "$RUN")
if [ -s backend.pid ] && kill -0 "\$(cat backend.pid)" 2>/dev/null; then exit 0; fi
setsid bash -c 'echo \$\$ > backend.pid; exec "\$@"' start-backend \\
  env -i $(env_words)$(q "$PY") -m uvicorn backend.main:app --host 127.0.0.1 --port $PORT \\
  >>backend.log 2>&1 </dev/null &
for _ in \$(seq 1 120); do
  if curl -fsS -o /dev/null $BASE/readyz 2>/dev/null; then echo "backend up on $BASE (pid \$(cat backend.pid))"; exit 0; fi
  if [ -s backend.pid ] && ! kill -0 "\$(cat backend.pid)" 2>/dev/null; then
    echo "the backend exited; last lines of its log:" >&2; tail -20 backend.log >&2; exit 1
  fi
  sleep 0.5
done
echo "the backend did not answer $BASE/readyz within 60 s" >&2; exit 1
EOF
# stop-backend: SIGTERM (uvicorn shuts down and closes the database), waits until it has exited.
cat >"$BIN/stop-backend" <<EOF
#!/usr/bin/env bash
# Stops the OmniAI API started by start-backend and waits until it has exited.
set -euo pipefail
cd $(q "$RUN")
[ -s backend.pid ] || { echo "backend not running"; exit 0; }
pid=\$(cat backend.pid)
kill -TERM "\$pid" 2>/dev/null || true
for _ in \$(seq 1 60); do kill -0 "\$pid" 2>/dev/null || break; sleep 0.5; done
kill -KILL "\$pid" 2>/dev/null || true
rm -f backend.pid
echo "backend stopped"
EOF
# A stand-in LLM: the OpenAI-compatible /v1/models and /v1/chat/completions, answering "echo: ...".
# OmniAI stores the user's message and the provider's answer as two messages rows.
cat >"$BIN/fake-llm.py" <<'EOF'
import json, signal, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, obj):
        body = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # /v1/models
        self.reply({"object": "list", "data": [{"id": "stand-in", "object": "model"}]})

    def do_POST(self):  # /v1/chat/completions
        req = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
        text = "echo: " + str((req.get("messages") or [{}])[-1].get("content", ""))
        self.reply({"id": "stand-in", "object": "chat.completion", "model": req.get("model"),
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": text}}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a quiet, clean exit on kill
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
EOF
chmod +x "$BIN/start-backend" "$BIN/stop-backend"

# A query on the database, rows printed as a|b|c (Python's sqlite3: no sqlite3 CLI needed).
sql() {
  "$PY" - "$DB" "$1" <<'EOF'
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
for row in con.execute(sys.argv[2]):
    print("|".join("" if v is None else str(v) for v in row))
EOF
}
# The foreign-key orphans, as "table -> parent: N" lines.
orphans() { sql 'SELECT "table", parent, count(*) FROM pragma_foreign_key_check GROUP BY 1, 2 ORDER BY 1, 2' | awk -F'|' '{printf "%s -> %s: %s\n", $1, $2, $3}'; }
orphan_summary() { local o; o=$(orphans | paste -sd ';' | sed 's/;/; /g'); printf '%s' "${o:-none}"; }

# ---------------------------------------------------------------------------------------------
# 4. Migrations on a fresh SQLite database, and what they made
# ---------------------------------------------------------------------------------------------
section "migrations (alembic upgrade head) on $DB"
(cd "$SRC/backend" && env -i "${BACKEND_ENV[@]}" "$PY" -m alembic upgrade head) >"$LOGS/migrate.log" 2>&1 ||
  { tail -20 "$LOGS/migrate.log" >&2; die "alembic upgrade head failed"; }
# What the migrations made: ordinary tables (app tables, alembic_version, and the shadow tables
# SQLite keeps for each FTS5 table), virtual tables, triggers, views.
schema_facts=$("$PY" - "$DB" <<'EOF'
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
rows = con.execute("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'").fetchall()
virtual = {n: s.split("USING", 1)[1].split("(", 1)[0].strip() for t, n, _, s in rows if t == "table" and s.upper().startswith("CREATE VIRTUAL")}
shadow = [n for t, n, _, s in rows if t == "table" and n not in virtual and any(n.startswith(v + "_") for v in virtual)]
app = [n for t, n, _, s in rows if t == "table" and n not in virtual and n not in shadow and n != "alembic_version"]
triggers = sorted(f"{n} on {tbl}" for t, n, tbl, _ in rows if t == "trigger")
views = [n for t, n, _, _ in rows if t == "view"]
rev = con.execute("SELECT version_num FROM alembic_version").fetchone()[0]
mode = con.execute("PRAGMA journal_mode").fetchone()[0]
print(f"head {rev}: {len(app)} app tables + alembic_version; virtual: "
      + (", ".join(f"{n} ({m})" for n, m in sorted(virtual.items())) or "none")
      + f" with {len(shadow)} shadow tables; triggers: {', '.join(triggers) or 'none'}; views: {len(views)}; journal_mode {mode}")
EOF
)
result PASS migrate "$schema_facts"
for t in conversations messages audit_logs sessions; do
  say "  $t primary key: $(sql "SELECT name || ' ' || type FROM pragma_table_info('$t') WHERE pk > 0" | paste -sd ',')"
done

# ---------------------------------------------------------------------------------------------
# 5. First admin, stand-in LLM, backend
# ---------------------------------------------------------------------------------------------
section "backend"
ADMIN_PW="Adm1n!$(openssl rand -hex 6 2>/dev/null || echo 5f3a9c)"
ALICE_PW="Al1ce!$(openssl rand -hex 6 2>/dev/null || echo 7b2e4d)"
BOB_PW="B0b!pass$(openssl rand -hex 4 2>/dev/null || echo 91c3)"
# OmniAI's script for the first admin (BOOTSTRAP_ADMIN_* env vars at startup would also do).
(cd "$SRC" && env -i "${BACKEND_ENV[@]}" "$PY" -m backend.scripts.create_admin \
  --username admin --email admin@example.com --password "$ADMIN_PW") >"$LOGS/create-admin.log" 2>&1 ||
  { cat "$LOGS/create-admin.log" >&2; die "backend/scripts/create_admin.py failed"; }
say "$(tail -1 "$LOGS/create-admin.log")"
(cd "$RUN" && setsid bash -c 'echo $$ > llm.pid; exec "$@"' fake-llm "$PY" "$BIN/fake-llm.py" "$LLM_PORT" >"$LOGS/llm.log" 2>&1 </dev/null &)
"$BIN/start-backend"
for p in /health /healthz /readyz /v1/status /v1/health; do
  printf '  GET %-11s %s\n' "$p" "$(curl -s -o /dev/null -w '%{http_code}' "$BASE$p")"
done

# ---------------------------------------------------------------------------------------------
# 6. Data through the real HTTP API
# ---------------------------------------------------------------------------------------------
# api JAR METHOD PATH [JSON]: one request with JAR's cookies (updated from the answer). Once JAR
# holds a session (the omni_csrf cookie is there), requests also carry the Origin header and the
# X-CSRF-Token header with the omni_csrf cookie's value, as OmniAI's CSRF middleware wants.
# Before that (login, register) they carry no Origin: OmniAI strips Set-Cookie from the answer to
# any request that has an Origin header (its same-site test compares the Origin's port, an int,
# with the Host's port, a str, so it never matches), and the login would set no cookie.
# Prints the body; fails on a non-2xx status.
api() {
  local jar=$1 method=$2 path=$3 body=${4:-} csrf code
  csrf=$(awk '$6 == "omni_csrf" { v = $7 } END { print v }' "$jar" 2>/dev/null || true)
  local args=(-sS -X "$method" -b "$jar" -c "$jar" -H 'Accept: application/json'
    -o "$WORK/http.body" -w '%{http_code}')
  [ -n "$csrf" ] && args+=(-H "Origin: $ORIGIN" -H "X-CSRF-Token: $csrf")
  [ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data-binary "$body")
  code=$(curl "${args[@]}" "$BASE$path")
  if [[ $code != 2* ]]; then
    echo "HTTP $code from $method $path: $(head -c 400 "$WORK/http.body")" >&2
    return 1
  fi
  cat "$WORK/http.body"
}
# jget FIELD: a field of the JSON on stdin.
jget() { "$PY" -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
# login JAR USER PASSWORD: a fresh cookie jar, then POST /api/auth/login (sets omni_session and
# omni_csrf). Fresh, because a leftover omni_csrf would make api() send an Origin header.
login() {
  : >"$1"
  api "$1" POST /api/auth/login "{\"username\":\"$2\",\"password\":\"$3\"}" >/dev/null
}
JARS=$WORK/jars
mkdir -p "$JARS"
: >"$JARS/admin" ; : >"$JARS/alice" ; : >"$JARS/bob"

section "data through the API ($BASE, Origin $ORIGIN)"
login "$JARS/admin" admin "$ADMIN_PW"
# Registration needs an invite code (INVITE_REQUIRED defaults to true); the admin makes them.
INVITE1=$(api "$JARS/admin" POST /api/admin/invites '{}' | jget code)
INVITE2=$(api "$JARS/admin" POST /api/admin/invites '{}' | jget code)
api "$JARS/alice" POST /api/auth/register \
  "{\"email\":\"alice@example.com\",\"username\":\"alice\",\"password\":\"$ALICE_PW\",\"invite_code\":\"$INVITE1\"}" >/dev/null
api "$JARS/bob" POST /api/auth/register \
  "{\"email\":\"bob@example.com\",\"username\":\"bob\",\"password\":\"$BOB_PW\",\"invite_code\":\"$INVITE2\"}" >/dev/null

# new_conversation JAR TITLE [ROUTE]: /api/chat/conversations (legacy) or /v1/conversations.
new_conversation() { api "$1" POST "${3:-/api/chat/conversations}" "{\"title\":\"$2\"}" | jget id; }
# say_to JAR CONV TEXT: a user message and the stand-in LLM's answer (two messages rows).
say_to() { api "$1" POST "/api/chat/conversations/$2/messages" "{\"content\":\"$3\",\"stream\":false}" >/dev/null; }
# context_block JAR CONV TITLE: a context block attached to the conversation.
context_block() { api "$1" POST /api/context-blocks "{\"title\":\"$3\",\"content\":\"notes for $3\",\"conversation_id\":\"$2\"}" >/dev/null; }

CONV=()
for i in 1 2 3 4 5; do
  route=/api/chat/conversations
  [ $((i % 2)) = 0 ] && route=/v1/conversations
  CONV[i]=$(new_conversation "$JARS/alice" "Alice conversation $i" "$route")
  say_to "$JARS/alice" "${CONV[i]}" "Hello number $i"
  say_to "$JARS/alice" "${CONV[i]}" "Second question in conversation $i"
done
context_block "$JARS/alice" "${CONV[1]}" "context of conversation 1"
context_block "$JARS/alice" "${CONV[2]}" "context of conversation 2"
# A context block belongs to exactly one conversation or one project.
PROJECT=$(api "$JARS/alice" POST /api/projects '{"name":"Alice project"}' | jget id)
api "$JARS/alice" POST /api/context-blocks "{\"title\":\"project notes\",\"content\":\"for the project\",\"project_id\":\"$PROJECT\"}" >/dev/null
BOB_CONV=$(new_conversation "$JARS/bob" "Bob conversation")
say_to "$JARS/bob" "$BOB_CONV" "Hello from Bob"
context_block "$JARS/bob" "$BOB_CONV" "Bob's context"
counts=$(sql "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM conversations), (SELECT count(*) FROM messages), (SELECT count(*) FROM context_blocks), (SELECT count(*) FROM sessions), (SELECT count(*) FROM audit_logs)")
IFS='|' read -r n_users n_convs n_msgs n_blocks n_sessions n_audit <<<"$counts"
result PASS data "$n_users users, $n_convs conversations, $n_msgs messages, $n_blocks context blocks, $n_sessions sessions, $n_audit audit_logs rows; orphans: $(orphan_summary)"

# ---------------------------------------------------------------------------------------------
# 7. Ordinary deletes that leave foreign-key orphans
# ---------------------------------------------------------------------------------------------
if [ "$ORPHANS" = 1 ]; then
  section "deletes that leave foreign-key orphans (PRAGMA foreign_key_check)"
  # a. Alice deletes a conversation that has a context block. The ORM deletes its messages;
  #    context_blocks.conversation_id (ON DELETE CASCADE in the schema) is left pointing at nothing.
  api "$JARS/alice" DELETE "/api/chat/conversations/${CONV[1]}" >/dev/null
  result INFO orphan-a "DELETE /api/chat/conversations/{id} (conversation with a context block) -> $(orphan_summary)"
  # b. The admin deletes Bob. The ORM deletes his conversations (and their messages), projects and
  #    sessions; audit_logs.user_id (SET NULL), context_blocks.user_id (CASCADE) and
  #    invite_codes.used_by are left pointing at nothing.
  BOB_ID=$(sql "SELECT id FROM users WHERE username = 'bob'")
  api "$JARS/admin" DELETE "/api/admin/users/$BOB_ID" >/dev/null
  result INFO orphan-b "DELETE /api/admin/users/{id} (user with a conversation and a context block) -> $(orphan_summary)"
  # c. Alice starts a chat run (POST /v1/chat with stream: true makes a chat_runs row) and deletes
  #    the conversation through the v1 API: chat_runs.conversation_id is left pointing at nothing.
  api "$JARS/alice" POST /v1/chat "{\"conversation_id\":\"${CONV[5]}\",\"input\":\"a run\",\"stream\":true}" >/dev/null
  api "$JARS/alice" DELETE "/v1/conversations/${CONV[5]}" >/dev/null
  result INFO orphan-c "POST /v1/chat (stream) then DELETE /v1/conversations/{id} -> $(orphan_summary)"
  say "PRAGMA foreign_key_check:"
  sql 'PRAGMA foreign_key_check' | sed 's/^/  /'
else
  say "(--no-orphans: the orphan-making deletes are skipped)"
fi

# ---------------------------------------------------------------------------------------------
# 8. The action's CLI
# ---------------------------------------------------------------------------------------------
HELP=$("$NODE" "$ACTION_DIR/dist/index.js" --help)
has_input() { grep -qE -- "^ *--$1( |\$)" <<<"$HELP"; }

# step NAME MODE [--flag value ...]: runs the CLI in $WORK (relative defaults land there), with
# its log and JSON report in $LOGS; prints the summary block and one result line.
step() {
  local name=$1 mode=$2 rc=0 detail
  shift 2
  local log=$LOGS/$name.log
  (cd "$WORK" && timeout 900 "$NODE" "$ACTION_DIR/dist/index.js" "$mode" --report-file "$LOGS/$name.json" "$@") >"$log" 2>&1 || rc=$?
  sed -n '/^## OmniAI/,/^report:/p' "$log" | grep -v '^report:' | sed '/^$/d; s/^/  /'
  if [ "$rc" = 0 ]; then
    detail=$(grep -m1 -E '^(✅|⚠️)' "$log" | sed 's/\*\*//g; s/^[^a-zA-Z]*//' || true)
    result PASS "$name" "${detail:-exit 0}"
  else
    detail=$(grep -m1 '^Error: ' "$log" || tail -1 "$log")
    result FAIL "$name" "exit $rc: $detail"
  fi
  return 0
}

section "action: backup"
step backup backup --connection-string "$DB" --backup-dir "$BACKUPS"
# A conversation made after the backup: the restore must take it away again.
AFTER_CONV=$(new_conversation "$JARS/alice" "made after the backup")

section "action: verify"
step verify verify --backup-dir "$BACKUPS"

section "action: drill"
step drill drill --backup-dir "$BACKUPS" --scratch-dir "$WORK/scratch" \
  --drill-log "$WORK/drill-log.jsonl" --drill-evidence none

section "action: restore"
# The runbook's maintenance window: everyone logs out first (OmniAI deletes the session row).
api "$JARS/alice" POST /api/auth/logout >/dev/null || true
api "$JARS/admin" POST /api/auth/logout >/dev/null || true
api "$JARS/bob" POST /api/auth/logout >/dev/null || true
RESTORE_ARGS=(--connection-string "$DB" --backup-dir "$BACKUPS" --confirm "$(basename "$DB")"
  --scratch-dir "$WORK/scratch")
if has_input stop-command && has_input start-command; then
  say "the CLI has --stop-command/--start-command: the action stops and starts the backend"
  step restore restore "${RESTORE_ARGS[@]}" --stop-command "$BIN/stop-backend" --start-command "$BIN/start-backend"
  "$BIN/start-backend" >/dev/null # up again whatever the action did (no-op when it is running)
else
  grep -qE '^  stop-command:' "$ACTION_DIR/action.yml" &&
    say "action.yml lists stop-command, but dist/index.js --help does not (dist not rebuilt yet)"
  say "stopping the backend around the restore here"
  "$BIN/stop-backend"
  step restore restore "${RESTORE_ARGS[@]}"
  "$BIN/start-backend"
fi
# What the restore did, seen through the API: the conversations of the backup are back, and the
# one made after the backup is gone.
if ! printf '%s\n' "${RESULTS[@]}" | grep -qE '^PASS  restore +[0-9]+s '; then
  result SKIP restore-effect "the restore did not pass"
elif login "$JARS/alice" alice "$ALICE_PW" && listing=$(api "$JARS/alice" GET /api/chat/conversations); then
  titles=$(printf '%s' "$listing" | "$PY" -c 'import json, sys; print(", ".join(sorted(c["title"] for c in json.load(sys.stdin))))')
  if grep -q "$AFTER_CONV" <<<"$listing"; then
    result FAIL restore-effect "the conversation made after the backup is still there: $titles"
  else
    result PASS restore-effect "alice's conversations: $titles"
  fi
else
  result FAIL restore-effect "alice could not log in and list her conversations after the restore"
fi
api "$JARS/alice" POST /api/auth/logout >/dev/null || true

section "action: smoke"
step smoke smoke --smoke-url "$BASE" --smoke-health-path /health --smoke-timeout 60 \
  --smoke-login-path /api/auth/login \
  --smoke-login-body "{\"username\":\"alice\",\"password\":\"$ALICE_PW\"}" \
  --smoke-conversations-path /api/chat/conversations --smoke-require-conversations true

section "action: gate"
CSP=none
[ -f "$SRC/frontend/index.html" ] && CSP=$SRC/frontend/index.html
[ "$CSP" = none ] && say "($SRC has no frontend/index.html: --csp-file none)"
step gate gate --gate-working-directory "$SRC/backend" \
  --gate-command "$PY -m pytest -p no:cacheprovider" --csp-file "$CSP"

# ---------------------------------------------------------------------------------------------
# 9. Summary
# ---------------------------------------------------------------------------------------------
section "results"
printf '%s\n' "${RESULTS[@]}"
if [ "$FAILED" -gt 0 ]; then
  say "$FAILED step(s) failed"
  exit 1
fi
say "all steps passed"
