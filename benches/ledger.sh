#!/usr/bin/env bash
# tollgate's ledger analytics on a large synthetic ledger, on SQLite and on PostgreSQL.
#
# Builds the release binary, seeds RECORDS synthetic records over DAYS days with
# `tollgate ledger seed` (keys, models, providers, prices of config/tollgate.example.toml)
# into a SQLite file and, when PostgreSQL is reachable, into a fresh database (created here,
# dropped at the end), starts `tollgate serve` on each and times, RUNS times each (median):
#   - /admin/usage for the last 30 days grouped by model,provider,jurisdiction;
#   - /admin/usage for the last 30 days grouped by day;
#   - /admin/savings for the last 30 days;
#   - `tollgate report` for the last 30 days grouped by model,provider,jurisdiction (its own
#     process: its peak RSS is measured with /usr/bin/time when present);
#   - /admin/export of one whole day (CSV, streamed);
# and tollgate's resident memory before each query and its peak during it (/proc/PID/status
# VmRSS, and VmHWM after resetting it through /proc/PID/clear_refs). Prints one Markdown table.
#
# Linux only (/proc). Needs bash, cargo, curl, awk; psql for PostgreSQL. Everything listens on
# 127.0.0.1. The full run writes ~6 GB of SQLite file and more in PostgreSQL.
#
# Usage:   benches/ledger.sh
# Env:     RECORDS=10000000   records to seed (QUICK=1 makes it 200000)
#          DAYS=90            spread over the last DAYS days
#          RUNS=5             timed runs per query (QUICK=1 makes it 3)
#          QUICK=1            a smaller ledger and fewer runs, for a smoke test
#          SKIP_BUILD=1       use the existing target/release/tollgate
#          TOLLGATE_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test
#                             the server to create the benchmark database on (this default when
#                             unset); SKIP_POSTGRES=1 measures SQLite only
#          TIMEOUT=900        seconds one query may take before it counts as failed
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$ROOT/target/release/tollgate
QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then
    RECORDS=${RECORDS:-200000}
    RUNS=${RUNS:-3}
else
    RECORDS=${RECORDS:-10000000}
    RUNS=${RUNS:-5}
fi
DAYS=${DAYS:-90}
TIMEOUT=${TIMEOUT:-900}
PG_ADMIN_URL=${TOLLGATE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}
[[ $RECORDS =~ ^[0-9]+$ && $RECORDS -ge 1 ]] || { echo "ledger.sh: RECORDS must be a positive number" >&2; exit 2; }
[[ $RUNS =~ ^[0-9]+$ && $RUNS -ge 1 ]] || { echo "ledger.sh: RUNS must be a positive number" >&2; exit 2; }

log() { printf '%s\n' "$*" >&2; }
die() {
    log "ledger.sh: $*"
    exit 1
}
for tool in cargo curl awk sort timeout; do
    command -v "$tool" >/dev/null || die "needs $tool on PATH"
done
[[ -d /proc/self ]] || die "needs Linux /proc"

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    log "building the release binary (cargo build --release)..."
    (cd "$ROOT" && cargo build --release --bin tollgate) >&2
fi
[[ -x $BIN ]] || die "no $BIN; run without SKIP_BUILD=1"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tollgate-ledger-bench.XXXXXX")
PIDS=()
PG_DB=
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ -n $PG_DB ]]; then
        psql -q "$PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
trap 'log "ledger.sh: failed at line $LINENO"' ERR

# The example config's models, providers and catalog; its secrets are placeholders (nothing
# here calls a provider). Listeners on port 0, JSON logs so the bound ports can be read.
cp "$ROOT/config/tollgate.example.toml" "$WORK/tollgate.toml"
cp "$ROOT/config/prices.toml" "$WORK/prices.toml"
for name in OPENAI_API_KEY OPENAI_EU_API_KEY AZURE_OPENAI_API_KEY AZURE_FOUNDRY_API_KEY \
    GITHUB_MODELS_API_KEY DEEPSEEK_API_KEY TOGETHER_API_KEY; do
    export "$name=sk-ledger-bench"
done
export TOLLGATE__SERVER__LISTEN=127.0.0.1:0 TOLLGATE__ADMIN__LISTEN=127.0.0.1:0
export TOLLGATE__LOGGING__FORMAT=json TOLLGATE__LOGGING__LEVEL=warn,tollgate=info

# Prints the first match of an extended regex in a file, waiting up to $3 seconds for it.
wait_for() {
    local file=$1 pattern=$2 deadline=$((SECONDS + $3)) found
    while ((SECONDS < deadline)); do
        found=$(grep -m1 -Eo "$pattern" "$file" 2>/dev/null || true)
        if [[ -n $found ]]; then
            printf '%s\n' "$found"
            return 0
        fi
        sleep 0.1
    done
    return 1
}
mem_mb() { awk -v k="$2:" '$1 == k { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
now() { date +%s.%N; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
max() { sort -g | tail -1; }

FROM=$(date -u -d '30 days ago' +%Y-%m-%dT%H:%M:%SZ)
TO=$(date -u +%Y-%m-%dT%H:%M:%SZ)
EXPORT_DAY=$(date -u -d '2 days ago' +%Y-%m-%d)
declare -A RESULT # "backend/figure" -> table cell

# seed BACKEND: seeds the ledger the TOLLGATE__LEDGER__* variables name; records the time.
seed() {
    local start end
    log "$1: seeding $RECORDS records over $DAYS days..."
    start=$(now)
    "$BIN" ledger seed --config "$WORK/tollgate.toml" --records "$RECORDS" --days "$DAYS" >&2
    end=$(now)
    RESULT[$1/seed]=$(awk -v s="$start" -v e="$end" -v n="$RECORDS" \
        'BEGIN { printf "%.0f s (%.0f records/s)", e - s, n / (e - s) }')
}

# measure BACKEND FIGURE PID CMD...: RUNS runs of CMD; the median time, tollgate's RSS
# before the first run and its highest peak across the runs.
measure() {
    local backend=$1 figure=$2 pid=$3 before times=() peaks=() start end status
    shift 3
    before=$(mem_mb "$pid" VmRSS)
    for _ in $(seq "$RUNS"); do
        echo 5 >"/proc/$pid/clear_refs" # resets VmHWM to the current RSS
        start=$(now)
        status=0
        timeout "$TIMEOUT" "$@" >"$WORK/out" 2>"$WORK/err" || status=$?
        end=$(now)
        ((status == 0)) || {
            RESULT[$backend/$figure]="failed (exit $status: $(head -c 200 "$WORK/err"))"
            return 0
        }
        times+=("$(awk -v s="$start" -v e="$end" 'BEGIN { print e - s }')")
        peaks+=("$(mem_mb "$pid" VmHWM)")
    done
    local t peak
    t=$(printf '%s\n' "${times[@]}" | median)
    peak=$(printf '%s\n' "${peaks[@]}" | max)
    RESULT[$backend/$figure]=$(awk -v t="$t" -v b="$before" -v p="$peak" \
        'BEGIN { printf "%.3f s, RSS %.0f → %.0f MB (%+.0f)", t, b, p, p - b }')
}

GET=(curl -sS --fail-with-body --max-time "$TIMEOUT")
TIME=()
[[ -x /usr/bin/time ]] && TIME=(/usr/bin/time -f %M -o "$WORK/report.rss")

# bench BACKEND: start tollgate on the seeded ledger and measure every figure.
bench() {
    local backend=$1 pid start admin url
    log "$backend: starting tollgate (budgets are rebuilt from the ledger at start)..."
    start=$(now)
    "$BIN" serve --config "$WORK/tollgate.toml" >"$WORK/$backend.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    admin=$(wait_for "$WORK/$backend.log" '"admin_listen":"127\.0\.0\.1:[0-9]+"' "$TIMEOUT") ||
        die "tollgate did not start: $(tail -20 "$WORK/$backend.log")"
    RESULT[$backend/startup]=$(awk -v s="$start" -v e="$(now)" 'BEGIN { printf "%.1f s", e - s }')
    admin=${admin#\"admin_listen\":\"}
    admin=http://${admin%\"}
    RESULT[$backend/idle]=$(mem_mb "$pid" VmRSS)
    url="$admin/admin/usage?from=$FROM&to=$TO"
    log "$backend: timing the queries ($RUNS runs each)..."
    measure "$backend" usage_mpj "$pid" "${GET[@]}" "$url&group_by=model,provider,jurisdiction"
    measure "$backend" usage_day "$pid" "${GET[@]}" "$url&group_by=day"
    measure "$backend" savings "$pid" "${GET[@]}" "$admin/admin/savings?from=$FROM&to=$TO"
    # GNU time records the report process's own peak RSS (KB) of its last run.
    measure "$backend" report "$pid" "${TIME[@]}" "$BIN" report --config "$WORK/tollgate.toml" \
        --from "$FROM" --to "$TO" --group-by model,provider,jurisdiction --format json
    [[ -s $WORK/report.rss ]] && RESULT[$backend/report_rss]=$(awk '{ printf "%.0f MB", $1 / 1024 }' "$WORK/report.rss")
    measure "$backend" export "$pid" "${GET[@]}" "$admin/admin/export?from=$EXPORT_DAY&to=$EXPORT_DAY"
    RESULT[$backend/export_rows]=$(($(wc -l <"$WORK/out") - 1))
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null || true
}

BACKENDS=(sqlite)
export TOLLGATE__LEDGER__PATH=$WORK/ledger.db
seed sqlite
RESULT[sqlite/size]=$(du -m "$WORK/ledger.db" | awk '{ print $1 " MB" }')
bench sqlite

if [[ ${SKIP_POSTGRES:-0} != 1 ]] && command -v psql >/dev/null &&
    psql -q "$PG_ADMIN_URL" -c 'SELECT 1' >/dev/null 2>&1; then
    PG_DB=tollgate_ledger_bench_$$
    psql -q "$PG_ADMIN_URL" -c "CREATE DATABASE $PG_DB" >/dev/null
    export TOLLGATE__LEDGER__URL=${PG_ADMIN_URL%/*}/$PG_DB
    seed postgres
    RESULT[postgres/size]=$(psql -qtA "$TOLLGATE__LEDGER__URL" -c \
        "SELECT (pg_database_size(current_database()) / 1048576) || ' MB'")
    bench postgres
    BACKENDS+=(postgres)
else
    log "PostgreSQL not reachable at $PG_ADMIN_URL (or SKIP_POSTGRES=1): SQLite only"
fi

cell() { printf '%s' "${RESULT[$1]:-—}"; }
cat <<EOF

## ledger analytics, $RECORDS synthetic records over $DAYS days ($(date -u +%Y-%m-%dT%H:%MZ), $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "?"))

$(nproc) cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), load average at the end $(cut -d' ' -f1-3 /proc/loadavg). Median of $RUNS runs; RSS is tollgate's before the query → its peak during the runs. 30 days = $FROM to $TO; the export is the whole UTC day $EXPORT_DAY.

EOF
header="| figure |"
rule="|---|"
for b in "${BACKENDS[@]}"; do
    header+=" $b |"
    rule+="---|"
done
echo "$header"
echo "$rule"
row() { # LABEL KEY
    local line="| $1 |" b
    for b in "${BACKENDS[@]}"; do line+=" $(cell "$b/$2") |"; done
    echo "$line"
}
row "seeding (tollgate ledger seed)" seed
row "ledger size on disk" size
row "start-up until listening" startup
row "RSS idle after start-up (MB)" idle
row "/admin/usage 30 days, group_by=model,provider,jurisdiction" usage_mpj
row "/admin/usage 30 days, group_by=day" usage_day
row "/admin/savings 30 days" savings
row "tollgate report 30 days, group_by=model,provider,jurisdiction (own process; RSS is the server's)" report
row "tollgate report's own peak RSS" report_rss
row "/admin/export one day" export
row "records in the one-day export" export_rows
