#!/usr/bin/env bash
# tollgate under load, against a direct call in the same run.
#
# Builds the release binary, starts `tollgate mock-upstream --instant` (a fixed answer sent at
# once: the baseline) and `tollgate serve` with benches/bench.toml in front of it (metering,
# ledger, metrics and the request log on), drives both with the oha load generator (installed
# with `cargo install oha --locked` when missing) and prints one Markdown table:
#   - max throughput, non-streaming, 32 connections, closed loop;
#   - latency p50/p99 at fixed rates, corrected for coordinated omission (oha -q --latency-correction);
#   - gateway CPU per request from /proc/PID/stat at 1 KB, 20 KB and 200 KB prompts, and the
#     time of one (and of two concurrent) 120,000-character prompts without spaces;
#   - closed-loop streams/s at 32 connections, and time to first byte at a light rate;
#   - resident memory of both processes at start, idle after serving, and peak.
#
# Linux only (/proc). Needs bash, cargo, curl, jq, awk, base64. Everything listens on 127.0.0.1.
#
# Usage:   benches/load.sh
# Env:     DURATION=10   seconds per timed run (default 10; QUICK=1 makes it 3)
#          QUICK=1       shorter runs and fewer requests, for a smoke test
#          SKIP_BUILD=1  use the existing target/release/tollgate
#          OHA=/path/oha use this oha
# Ends with a 4 MiB unspaced prompt given 10 s (5 s with QUICK=1); a gateway that takes longer
# keeps a core busy until the script stops it.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$ROOT/target/release/tollgate
QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then
    DURATION=${DURATION:-3}
    CPU_REQUESTS=(1000 300 60)
    HUGE_TIMEOUT=5
else
    DURATION=${DURATION:-10}
    CPU_REQUESTS=(4000 1000 200)
    HUGE_TIMEOUT=10
fi
DURATION=${DURATION%s}
[[ $DURATION =~ ^[0-9]+$ && $DURATION -ge 1 && $DURATION -le 120 ]] ||
    { echo "load.sh: DURATION must be 1-120 (seconds)" >&2; exit 2; }
CONNECTIONS=32
RATES=(200 500)
TTFB_RATE=100
CPU_SIZES=(1024 20480 204800)
CPU_LABELS=("1 KB" "20 KB" "200 KB")
CPU_CONNECTIONS=4
CLK_TCK=$(getconf CLK_TCK)
KEY="tg-bench-$$-$RANDOM$RANDOM"

log() { printf '%s\n' "$*" >&2; }
die() {
    log "load.sh: $*"
    exit 1
}
for tool in cargo curl jq awk base64 timeout; do
    command -v "$tool" >/dev/null || die "needs $tool on PATH"
done
[[ -d /proc/self ]] || die "needs Linux /proc"

# --- build and load generator -------------------------------------------------------------
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    log "building the release binary (cargo build --release)..."
    (cd "$ROOT" && cargo build --release --bin tollgate) >&2
fi
[[ -x $BIN ]] || die "no $BIN; run without SKIP_BUILD=1"
OHA=${OHA:-$(command -v oha || true)}
if [[ -z $OHA ]]; then
    OHA=${CARGO_HOME:-$HOME/.cargo}/bin/oha
    if [[ ! -x $OHA ]]; then
        log "installing the oha load generator (cargo install oha --locked; a few minutes, once)..."
        cargo install oha --locked >&2
    fi
fi
[[ -x $OHA ]] || die "oha not found at $OHA"

# --- processes: started here, stopped on any exit ------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tollgate-bench.XXXXXX")
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
trap 'log "load.sh: failed at line $LINENO"' ERR

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

"$BIN" mock-upstream --instant --listen 127.0.0.1:0 >"$WORK/mock.log" 2>&1 &
MOCK_PID=$!
PIDS+=("$MOCK_PID")
UPSTREAM=$(wait_for "$WORK/mock.log" 'http://127\.0\.0\.1:[0-9]+' 10) ||
    die "mock upstream did not start: $(cat "$WORK/mock.log")"

HASH=$("$BIN" hash-key "$KEY" | sed -n 's/^hash: //p')
cp "$ROOT/config/prices.toml" "$WORK/prices.toml"
sed -e "s|@UPSTREAM@|$UPSTREAM|" -e "s|@LEDGER@|$WORK/ledger.db|" -e "s|@KEY_HASH@|$HASH|" \
    "$ROOT/benches/bench.toml" >"$WORK/bench.toml"
TOLLGATE_BENCH_UPSTREAM_KEY=sk-bench "$BIN" serve --config "$WORK/bench.toml" \
    >"$WORK/tollgate.log" 2>&1 &
TG_PID=$!
PIDS+=("$TG_PID")
TG_ADDR=$(wait_for "$WORK/tollgate.log" '"listen":"127\.0\.0\.1:[0-9]+"' 20) ||
    die "tollgate did not start: $(tail -20 "$WORK/tollgate.log")"
TG_ADDR=${TG_ADDR#\"listen\":\"}
TG_ADDR=${TG_ADDR%\"}
ADMIN_ADDR=$(wait_for "$WORK/tollgate.log" '"admin_listen":"127\.0\.0\.1:[0-9]+"' 5)
ADMIN_ADDR=${ADMIN_ADDR#\"admin_listen\":\"}
ADMIN_ADDR=${ADMIN_ADDR%\"}
DIRECT_URL=$UPSTREAM/v1/chat/completions # the path tollgate's openai provider calls
TG_URL=http://$TG_ADDR/v1/chat/completions

# --- /proc readers -------------------------------------------------------------------------
# utime + stime in clock ticks: fields 14 and 15 of /proc/PID/stat, counted after "(comm) ".
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
# A /proc/PID/status field (VmRSS, VmHWM) in MB.
mem_mb() { awk -v k="$2:" '$1 == k { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
RSS_START_TG=$(mem_mb "$TG_PID" VmRSS)
RSS_START_MOCK=$(mem_mb "$MOCK_PID" VmRSS)

# --- request bodies ------------------------------------------------------------------------
PARAGRAPH="The quarterly report shows that revenue grew in every region, driven mostly by \
the new subscription plans and a lower churn rate among small business customers. Operating \
costs rose more slowly than sales, although cloud spending and support headcount both \
increased. Please summarise the main drivers, list the three largest risks for the next \
quarter, and suggest which metrics the finance team should watch more closely; keep the \
answer short and use plain language that a new board member would understand."
# body FILE PROMPT_BYTES [stream]: a chat request whose user message is PROMPT_BYTES of prose.
body() {
    local text
    text=$(awk -v n="$2" -v p="$PARAGRAPH" \
        'BEGIN { s = p; while (length(s) < n) s = s " " s; print substr(s, 1, n) }')
    write_body "$1" "$text" "${3:-}"
}
write_body() {
    local extra=''
    [[ $3 == stream ]] && extra=',"stream":true,"stream_options":{"include_usage":true}'
    printf '{"model":"gpt-4o-mini","max_tokens":256%s,"messages":[{"role":"system","content":"You are a concise assistant."},{"role":"user","content":"%s"}]}' \
        "$extra" "$2" >"$1"
}
body "$WORK/1k.json" 1024
body "$WORK/1k-stream.json" 1024 stream
for size in "${CPU_SIZES[@]}"; do body "$WORK/p$size.json" "$size"; done
# unspaced FILE CHARS (a multiple of 4): random lowercase letters with no space or punctuation,
# like a DNA sequence: the pre-tokeniser keeps it as one piece, the worst case for BPE.
unspaced() {
    write_body "$1" "$(head -c $(($2 * 3 / 4)) /dev/urandom | base64 -w0 | tr 'A-Z0-9+/' 'a-za-jkl')" ""
}
unspaced "$WORK/unspaced.json" 120000
unspaced "$WORK/huge.json" 4194304

# --- load runs -----------------------------------------------------------------------------
WARNINGS=()
# oha_run NAME URL BODY [oha args...]: one run, JSON kept as $WORK/NAME.json.
oha_run() {
    local name=$1 url=$2 body=$3 bad
    shift 3
    log "  $name"
    timeout $((DURATION * 3 + 180)) "$OHA" --no-tui --output-format json -m POST \
        -T application/json -H "authorization: Bearer $KEY" -D "$body" "$@" "$url" \
        >"$WORK/$name.json" || die "oha failed for $name"
    # Requests still in flight when a timed run ends are cut ("aborted due to deadline"): not failures.
    bad=$(jq '([.statusCodeDistribution | to_entries[] | select(.key != "200") | .value] | add // 0)
        + ([.errorDistribution | to_entries[] | select(.key != "aborted due to deadline") | .value]
           | add // 0)' "$WORK/$name.json")
    ((bad == 0)) || WARNINGS+=("$name: $bad requests failed or were not 200: $(jq -c \
        '{status: .statusCodeDistribution, errors: .errorDistribution}' "$WORK/$name.json")")
}
q() { jq -r "$2" "$WORK/$1.json"; }
rps() { q "$1" '.summary.requestsPerSec'; }
ms() { q "$1" "$2 * 1000"; }

# Number formatting and arithmetic (awk: bash has no floats).
f() { awk -v v="$2" -v fmt="$1" 'BEGIN { printf fmt, v }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f×", a / b; else printf "n/a" }'; }
added() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.2f", a - b }'; }
sec() { f "%.3f s" "$1"; }
huge() { # STATUS SECONDS
    case $1 in
    200) sec "$2" ;;
    000) echo "> ${HUGE_TIMEOUT} s (gave up)" ;;
    *) echo "HTTP $1 after $(sec "$2")" ;;
    esac
}

# one_request NAME URL BODY [MAX_SECONDS]: one timed request; "STATUS SECONDS" goes to
# $WORK/NAME.time (status 000: no answer in time) and the answer to $WORK/NAME.out.
one_request() {
    curl -sS -o "$WORK/$1.out" --max-time "${4:-120}" -w '%{http_code} %{time_total}\n' \
        -H "authorization: Bearer $KEY" -H 'content-type: application/json' \
        --data-binary "@$3" "$2" >"$WORK/$1.time" 2>/dev/null || echo "000 ${4:-120}" >"$WORK/$1.time"
}
# timed NAME: "STATUS SECONDS" of a finished one_request; an answer other than 200 is a warning.
timed() {
    local status seconds
    read -r status seconds <"$WORK/$1.time"
    [[ $status == 200 || $status == 000 ]] ||
        WARNINGS+=("$1: HTTP $status: $(head -c 300 "$WORK/$1.out")")
    TIMED_STATUS=$status
    TIMED_SECONDS=$seconds
}

log "checking both endpoints answer..."
for url in "$DIRECT_URL" "$TG_URL"; do
    status=$(curl -sS -o "$WORK/check.out" -w '%{http_code}' --max-time 10 \
        -H "authorization: Bearer $KEY" -H 'content-type: application/json' \
        --data-binary "@$WORK/1k.json" "$url" || true)
    [[ $status == 200 ]] || die "$url answered $status: $(head -c 500 "$WORK/check.out")"
done

log "warm-up..."
oha_run warm-direct "$DIRECT_URL" "$WORK/1k.json" -n 500 -c 8
oha_run warm-tollgate "$TG_URL" "$WORK/1k.json" -n 500 -c 8

log "max throughput, ${CONNECTIONS} connections, ${DURATION}s each..."
oha_run max-direct "$DIRECT_URL" "$WORK/1k.json" -z "${DURATION}s" -c "$CONNECTIONS"
oha_run max-tollgate "$TG_URL" "$WORK/1k.json" -z "${DURATION}s" -c "$CONNECTIONS"

log "fixed rates, latency corrected for coordinated omission..."
for rate in "${RATES[@]}"; do
    for side in direct tollgate; do
        url=$DIRECT_URL
        [[ $side == tollgate ]] && url=$TG_URL
        oha_run "rate$rate-$side" "$url" "$WORK/1k.json" -z "${DURATION}s" -c "$CONNECTIONS" \
            -q "$rate" --latency-correction
    done
done

log "closed-loop streaming, ${CONNECTIONS} connections..."
oha_run stream-direct "$DIRECT_URL" "$WORK/1k-stream.json" -z "${DURATION}s" -c "$CONNECTIONS"
oha_run stream-tollgate "$TG_URL" "$WORK/1k-stream.json" -z "${DURATION}s" -c "$CONNECTIONS"
log "streams at ${TTFB_RATE}/s for time to first byte..."
oha_run ttfb-direct "$DIRECT_URL" "$WORK/1k-stream.json" -z "${DURATION}s" -c 8 -q "$TTFB_RATE"
oha_run ttfb-tollgate "$TG_URL" "$WORK/1k-stream.json" -z "${DURATION}s" -c 8 -q "$TTFB_RATE"

log "gateway CPU per request by prompt size (${CPU_CONNECTIONS} connections)..."
CPU_MS=()
for i in "${!CPU_SIZES[@]}"; do
    size=${CPU_SIZES[$i]}
    n=${CPU_REQUESTS[$i]}
    oha_run "cpu$size-direct" "$DIRECT_URL" "$WORK/p$size.json" -n "$n" -c "$CPU_CONNECTIONS"
    before=$(cpu_ticks "$TG_PID")
    oha_run "cpu$size-tollgate" "$TG_URL" "$WORK/p$size.json" -n "$n" -c "$CPU_CONNECTIONS"
    sleep 0.5 # the ledger writer flushes every 200 ms; its work is part of the cost
    after=$(cpu_ticks "$TG_PID")
    CPU_MS+=("$(awk -v t=$((after - before)) -v hz="$CLK_TCK" -v n="$n" \
        'BEGIN { printf "%.3f", t * 1000 / hz / n }')")
done

log "one prompt of 120,000 characters without spaces, then two at once..."
one_request unspaced-direct "$DIRECT_URL" "$WORK/unspaced.json"
one_request unspaced-tollgate "$TG_URL" "$WORK/unspaced.json"
one_request unspaced-pair1 "$TG_URL" "$WORK/unspaced.json" &
pair1=$!
one_request unspaced-pair2 "$TG_URL" "$WORK/unspaced.json" &
pair2=$!
wait "$pair1" "$pair2" || true
UNSPACED=()
for name in unspaced-direct unspaced-tollgate unspaced-pair1 unspaced-pair2; do
    timed "$name"
    [[ $TIMED_STATUS == 200 ]] || WARNINGS+=("$name: no answer within 120 s")
    UNSPACED+=("$TIMED_SECONDS")
done

sleep 2 # idle: let in-flight work, the ledger writer and allocator settle
RSS_IDLE_TG=$(mem_mb "$TG_PID" VmRSS)
RSS_PEAK_TG=$(mem_mb "$TG_PID" VmHWM)
RSS_IDLE_MOCK=$(mem_mb "$MOCK_PID" VmRSS)
RSS_PEAK_MOCK=$(mem_mb "$MOCK_PID" VmHWM)
# Last, as it may leave a worker busy after the client gives up: a 4 MiB unspaced prompt.
log "one prompt of 4 MiB without spaces (given ${HUGE_TIMEOUT} s)..."
one_request huge-direct "$DIRECT_URL" "$WORK/huge.json" "$HUGE_TIMEOUT"
one_request huge-tollgate "$TG_URL" "$WORK/huge.json" "$HUGE_TIMEOUT"
timed huge-direct
HUGE_DIRECT=$(huge "$TIMED_STATUS" "$TIMED_SECONDS")
timed huge-tollgate
HUGE_TG=$(huge "$TIMED_STATUS" "$TIMED_SECONDS")
RECORDED=$(curl -sS --max-time 5 "http://$ADMIN_ADDR/metrics" |
    awk '/^tollgate_requests_total/ { n += $NF } END { printf "%d", n }' || echo "?")

# --- the table -----------------------------------------------------------------------------
pct() { # NAME: "p50 / p99 ms"
    printf '%s / %s ms' "$(f %.2f "$(ms "$1" '.latencyPercentiles.p50')")" \
        "$(f %.2f "$(ms "$1" '.latencyPercentiles.p99')")"
}
added_pct() { # DIRECT TOLLGATE
    printf '%s / %s ms' \
        "$(added "$(ms "$2" '.latencyPercentiles.p50')" "$(ms "$1" '.latencyPercentiles.p50')")" \
        "$(added "$(ms "$2" '.latencyPercentiles.p99')" "$(ms "$1" '.latencyPercentiles.p99')")"
}
ttfb() { # NAME: "p50 / p99 ms"
    printf '%s / %s ms' "$(f %.2f "$(ms "$1" '.firstBytePercentiles.p50')")" \
        "$(f %.2f "$(ms "$1" '.firstBytePercentiles.p99')")"
}

cat <<EOF

## tollgate vs a direct call ($(date -u +%Y-%m-%dT%H:%MZ), $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "?"))

$(nproc) cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), load average at the end $(cut -d' ' -f1-3 /proc/loadavg); load generator $("$OHA" --version | head -1), mock upstream and tollgate share them. ${DURATION} s per timed run; 1 KB prompt unless stated; model gpt-4o-mini (o200k tokenizer); metering, ledger (SQLite), metrics and the request log on. Latency figures are oha's, with coordinated-omission correction at fixed rates.

| figure | direct to the mock | through tollgate | tollgate vs direct |
|---|---|---|---|
| max req/s, non-streaming, ${CONNECTIONS} connections | $(f %.0f "$(rps max-direct)") | $(f %.0f "$(rps max-tollgate)") | $(ratio "$(rps max-tollgate)" "$(rps max-direct)") |
EOF
for rate in "${RATES[@]}"; do
    echo "| latency p50 / p99 at ${rate} req/s (achieved $(f %.0f "$(rps "rate$rate-direct")") / $(f %.0f "$(rps "rate$rate-tollgate")")) | $(pct "rate$rate-direct") | $(pct "rate$rate-tollgate") | added $(added_pct "rate$rate-direct" "rate$rate-tollgate") |"
done
for i in "${!CPU_SIZES[@]}"; do
    size=${CPU_SIZES[$i]}
    echo "| gateway CPU per request / p50 latency, ${CPU_LABELS[$i]} prompt (${CPU_REQUESTS[$i]} requests, ${CPU_CONNECTIONS} connections) | — / $(f %.2f "$(ms "cpu$size-direct" '.latencyPercentiles.p50')") ms | $(f %.3f "${CPU_MS[$i]}") ms / $(f %.2f "$(ms "cpu$size-tollgate" '.latencyPercentiles.p50')") ms | added p50 $(added "$(ms "cpu$size-tollgate" '.latencyPercentiles.p50')" "$(ms "cpu$size-direct" '.latencyPercentiles.p50')") ms |"
done
cat <<EOF
| one prompt of 120,000 characters without spaces | $(sec "${UNSPACED[0]}") | $(sec "${UNSPACED[1]}") | two at once: $(sec "${UNSPACED[2]}") and $(sec "${UNSPACED[3]}") |
| one prompt of 4 MiB without spaces | $HUGE_DIRECT | $HUGE_TG | — |
| closed-loop streams/s, ${CONNECTIONS} connections (p50 per stream) | $(f %.0f "$(rps stream-direct)") ($(f %.2f "$(ms stream-direct '.latencyPercentiles.p50')") ms) | $(f %.0f "$(rps stream-tollgate)") ($(f %.2f "$(ms stream-tollgate '.latencyPercentiles.p50')") ms) | $(ratio "$(rps stream-tollgate)" "$(rps stream-direct)") |
| time to first byte p50 / p99, streams at ${TTFB_RATE}/s | $(ttfb ttfb-direct) | $(ttfb ttfb-tollgate) | added $(added "$(ms ttfb-tollgate '.firstBytePercentiles.p50')" "$(ms ttfb-direct '.firstBytePercentiles.p50')") ms p50 |
| RSS at start / idle after serving / peak (MB) | ${RSS_START_MOCK} / ${RSS_IDLE_MOCK} / ${RSS_PEAK_MOCK} | ${RSS_START_TG} / ${RSS_IDLE_TG} / ${RSS_PEAK_TG} | — |

Requests tollgate counted in tollgate_requests_total: ${RECORDED}.
EOF
if ((${#WARNINGS[@]})); then
    echo
    echo "Warnings (figures above include these failures):"
    for w in "${WARNINGS[@]}"; do echo "- $w"; done
fi
