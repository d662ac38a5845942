#!/usr/bin/env bash
# pathmq vs Mosquitto, side by side on this machine: builds the release binaries, starts
# both brokers on free loopback ports, runs the same pathmq-bench scenarios against each,
# interleaved (pathmq, mosquitto, mosquitto, pathmq, … alternating who goes first), for
# --reps repetitions, and prints a markdown table of medians and the ratio
# pathmq/Mosquitto. Native-protocol scenarios run against pathmq only. Scenarios named
# `… tls` run MQTT over TLS, against each broker's TLS listener (one self-signed
# certificate per run, made with openssl). A scenario that fails is skipped and said so;
# the run goes on. Both brokers are stopped on exit.
#
#   bench/compare.sh                   # the full comparison, 3 repetitions
#   bench/compare.sh --quick --reps 1  # a smoke run with small counts
#   bench/compare.sh --only 'fan-in'   # scenarios whose name matches a regex
#   bench/compare.sh --only 'tls'      # only the MQTT-over-TLS scenarios
#
# See docs/BENCHMARKS.md for what each scenario measures.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/compare.sh [options]
  --reps N             repetitions of every scenario (default 3); the table shows medians
  --quick              small counts: checks that everything works, figures mean nothing
  --only REGEX         run only the scenarios whose name matches REGEX (bash =~)
  --no-build           use the binaries already in $CARGO_TARGET_DIR/release
  --pathmq-args ARGS   extra arguments for pathmq (e.g. "--session-queue 1000000")
  --mosquitto-conf L   an extra line for Mosquitto's config file (repeatable)
  --results FILE       also keep every raw JSON report (one line each) in FILE
  --keep               keep the temporary directory (broker logs, configs, raw results)
  -h, --help           this text
Environment: CARGO_TARGET_DIR (default: <repo>/target).
Needs python3, and openssl for the TLS certificate (without it, pathmq creates one).
EOF
}

REPS=3
QUICK=0
ONLY=""
BUILD=1
KEEP=0
PATHMQ_ARGS=""
MOSQ_EXTRA=()
RESULTS=""
while [[ $# -gt 0 ]]; do
    case $1 in
        --reps) REPS=$2; shift 2 ;;
        --quick) QUICK=1; shift ;;
        --only) ONLY=$2; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --pathmq-args) PATHMQ_ARGS=$2; shift 2 ;;
        --mosquitto-conf) MOSQ_EXTRA+=("$2"); shift 2 ;;
        --results) RESULTS=$(realpath -m "$2"); shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "compare.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    esac
done
[[ $REPS =~ ^[1-9][0-9]*$ ]] || { echo "compare.sh: --reps must be a positive integer" >&2; exit 2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=$(realpath -m "${CARGO_TARGET_DIR:-$ROOT/target}")
BIN=$TARGET_DIR/release
log() { echo "compare.sh: $*" >&2; }

# ---------------------------------------------------------------- build and install
if [[ $BUILD == 1 ]]; then
    log "building release binaries into $TARGET_DIR"
    (cd "$ROOT" && CARGO_TARGET_DIR=$TARGET_DIR cargo build --release -p pathmq -p pathmq-bench)
fi
for bin in pathmq pathmq-bench; do
    [[ -x $BIN/$bin ]] || { log "$BIN/$bin is missing (run without --no-build)"; exit 1; }
done

MOSQUITTO=$(command -v mosquitto || true)
[[ -z $MOSQUITTO && -x /usr/sbin/mosquitto ]] && MOSQUITTO=/usr/sbin/mosquitto
if [[ -z $MOSQUITTO ]]; then
    log "installing mosquitto"
    apt-get install -y mosquitto >&2 || { apt-get update >&2 && apt-get install -y mosquitto >&2; }
    MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)
fi
[[ -x $MOSQUITTO ]] || { log "mosquitto is not installed and could not be"; exit 1; }

# Every connection is a file descriptor, in the brokers (started from here) and the bench.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# ---------------------------------------------------------------- brokers
TMP=$(mktemp -d "${TMPDIR:-/tmp}/pathmq-compare.XXXXXX")
RAW=$TMP/results.jsonl
: >"$RAW"

# The TLS listeners' certificate, one per run: self-signed, EC P-256, for localhost and
# 127.0.0.1. CA:FALSE because rustls (the bench's TLS client) refuses a CA certificate as
# a server's own, and openssl's default for -x509 is CA:TRUE. Without openssl, pathmq
# creates a self-signed certificate and key (also P-256) at these paths when it first
# starts, and Mosquitto, started after it, uses the same files.
CERT=$TMP/tls/cert.pem
KEY=$TMP/tls/key.pem
mkdir -p "$TMP/tls"
if command -v openssl >/dev/null; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -days 2 -nodes -subj /CN=localhost \
        -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -addext basicConstraints=critical,CA:FALSE \
        -keyout "$KEY" -out "$CERT" 2>"$TMP/openssl.log" ||
        { log "openssl failed ($(tail -1 "$TMP/openssl.log")): pathmq creates the TLS certificate"; rm -f "$CERT" "$KEY"; }
else
    log "openssl not found: pathmq creates the TLS certificate at its first start"
fi
PM_PID=""
MQ_PID=""

stop_pid() { # pid: stop a broker this script started, and reap it
    local pid=$1
    [[ -n $pid ]] || return 0
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    stop_pid "$PM_PID"
    stop_pid "$MQ_PID"
    if [[ -n $RESULTS ]]; then cp "$RAW" "$RESULTS" 2>/dev/null || true; fi
    if [[ $KEEP == 1 ]]; then log "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() { # port pid name: until the port accepts connections (10 s), or the process died
    local port=$1 pid=$2 name=$3
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || { log "$name exited at start; its log:"; tail -20 "$TMP/$name.log" >&2; return 1; }
        python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2).close()' "$port" 2>/dev/null && return 0
        sleep 0.1
    done
    log "$name does not listen on 127.0.0.1:$port"
    return 1
}

PM_MQTT=$(free_port)
PM_HTTP=$(free_port)
PM_TLS=$(free_port)
MQ_PORT=$(free_port)
MQ_TLS=$(free_port)

start_pathmq() {
    # redb, durable: the native sets are committed to disk before they are answered. (MQTT
    # publishes without retain never touch the store, so the MQTT scenarios are the same.)
    # MQTT over TLS on a second listener, for the `… tls` scenarios.
    # shellcheck disable=SC2086 # PATHMQ_ARGS is a list of words on purpose
    rm -f "$TMP/pathmq.redb"
    "$BIN/pathmq" --storage-engine redb --storage-path "$TMP/pathmq.redb" --mqtt-listen "127.0.0.1:$PM_MQTT" \
        --http-listen "127.0.0.1:$PM_HTTP" --mqtt-tls-listen "127.0.0.1:$PM_TLS" \
        --tls-cert-path "$CERT" --tls-key-path "$KEY" --log-level warn $PATHMQ_ARGS >>"$TMP/pathmq.log" 2>&1 &
    PM_PID=$!
    wait_port "$PM_MQTT" "$PM_PID" pathmq && wait_port "$PM_TLS" "$PM_PID" pathmq
}

start_mosquitto() {
    {
        echo "listener $MQ_PORT 127.0.0.1"
        echo "allow_anonymous true"
        echo "persistence false"
        # No per-client queue limit: with its default (1,000) Mosquitto drops QoS 1/2
        # messages for a slow subscriber, which would show as loss, not as its speed.
        echo "max_queued_messages 0"
        # pathmq and this bench disable Nagle; so does Mosquitto here, for latency.
        echo "set_tcp_nodelay true"
        echo "log_dest file $TMP/mosquitto.log"
        echo "log_type error"
        echo "log_type warning"
        echo "connection_messages false"
        [[ $(id -u) == 0 ]] && echo "user root" # else it drops to user mosquitto: no log file
        for line in "${MOSQ_EXTRA[@]}"; do echo "$line"; done
        # MQTT over TLS, for the `… tls` scenarios; last, because certfile and keyfile
        # belong to the listener above them.
        echo "listener $MQ_TLS 127.0.0.1"
        echo "certfile $CERT"
        echo "keyfile $KEY"
    } >"$TMP/mosquitto.conf"
    "$MOSQUITTO" -c "$TMP/mosquitto.conf" >>"$TMP/mosquitto.stderr" 2>&1 &
    MQ_PID=$!
    wait_port "$MQ_PORT" "$MQ_PID" mosquitto && wait_port "$MQ_TLS" "$MQ_PID" mosquitto
}

restart() { # broker: a fresh process (memory figures start from a clean heap), on a new
    # port, so connections to the old one still in TIME_WAIT do not slow the new ones down
    case $1 in
        pathmq) stop_pid "$PM_PID"; PM_MQTT=$(free_port); PM_HTTP=$(free_port); PM_TLS=$(free_port); start_pathmq ;;
        mosquitto) stop_pid "$MQ_PID"; MQ_PORT=$(free_port); MQ_TLS=$(free_port); start_mosquitto ;;
    esac
}

start_pathmq
start_mosquitto
log "pathmq pid $PM_PID mqtt 127.0.0.1:$PM_MQTT http 127.0.0.1:$PM_HTTP mqtt-tls 127.0.0.1:$PM_TLS; mosquitto pid $MQ_PID port $MQ_PORT tls $MQ_TLS; logs in $TMP"

# ---------------------------------------------------------------- scenarios
# name | brokers (both / pathmq) | how to run | pathmq-bench arguments (full ; quick)
# how: mqtt, fresh (restart the broker first), multi (several processes), native; `+tls`:
# over the TLS listener (the bench gets --tls-ca <the run's certificate>).
SCENARIOS=(
    "fan-in qos0|both|mqtt|fan-in --publishers 16 --messages 50000 --qos 0;fan-in --publishers 16 --messages 2000 --qos 0"
    "fan-in qos1|both|mqtt|fan-in --publishers 16 --messages 50000 --qos 1;fan-in --publishers 16 --messages 2000 --qos 1"
    "fan-in qos1 tls|both|mqtt+tls|fan-in --publishers 16 --messages 50000 --qos 1;fan-in --publishers 16 --messages 2000 --qos 1"
    "fan-out 100 qos0|both|mqtt|fan-out --subscribers 100 --messages 20000 --qos 0;fan-out --subscribers 100 --messages 500 --qos 0"
    "fan-out 100 qos0 tls|both|mqtt+tls|fan-out --subscribers 100 --messages 20000 --qos 0;fan-out --subscribers 100 --messages 500 --qos 0"
    "fan-out 1000 qos0|both|mqtt|fan-out --subscribers 1000 --messages 2000 --qos 0;fan-out --subscribers 1000 --messages 100 --qos 0"
    "fan-out 100 qos1|both|mqtt|fan-out --subscribers 100 --messages 20000 --qos 1;fan-out --subscribers 100 --messages 500 --qos 1"
    "fan-out 100 qos1 persistent|both|mqtt|fan-out --subscribers 100 --messages 20000 --qos 1 --persistent;fan-out --subscribers 100 --messages 500 --qos 1 --persistent"
    "latency 1000/s|both|mqtt|latency --rate 1000 --seconds 10;latency --rate 1000 --seconds 2"
    "connections 10000|both|fresh|connections --count 10000;connections --count 1000"
    "connections 1000|both|fresh|connections --count 1000;connections --count 200"
    "connections 1000 tls|both|fresh+tls|connections --count 1000;connections --count 200"
    "connections max|both|multi|19000 2;2000 2"
    "native-set (durable)|pathmq|native|native-set;native-set --count 2000"
    "native-get|pathmq|native|native-get;native-get --count 5000"
    "native-fanout|pathmq|native|native-fanout;native-fanout --count 500"
)

rep_of() { # the JSON of one run, wrapped with who/what/when
    python3 -c 'import json,sys; print(json.dumps({"broker": sys.argv[1], "scenario": sys.argv[2], "rep": int(sys.argv[3]), "report": json.loads(sys.argv[4])}))' "$@"
}

failed() { # broker scenario rep message
    log "skip: '$2' on $1 (rep $3) failed: $4"
    python3 -c 'import json,sys; print(json.dumps({"broker": sys.argv[1], "scenario": sys.argv[2], "rep": int(sys.argv[3]), "error": sys.argv[4]}))' "$@" >>"$RAW"
}

alive() { # broker: still running? (restart it and say so if not)
    local pid
    case $1 in pathmq) pid=$PM_PID ;; mosquitto) pid=$MQ_PID ;; esac
    kill -0 "$pid" 2>/dev/null && return 0
    log "$1 died; the end of its log:"
    tail -20 "$TMP/$1.log" >&2 || true
    restart "$1"
    return 1
}

run_one() { # broker scenario rep how args
    local broker=$1 name=$2 rep=$3 how=$4 port pid out argv tls=()
    read -r -a argv <<<"$5"
    if [[ $how == *+tls ]]; then how=${how%+tls}; tls=(--tls-ca "$CERT"); fi
    if [[ $how == fresh || $how == multi ]]; then
        restart "$broker" || { failed "$broker" "$name" "$rep" "the broker did not restart"; return 0; }
    fi
    case $broker in
        pathmq) port=$PM_MQTT; pid=$PM_PID ;;
        mosquitto) port=$MQ_PORT; pid=$MQ_PID ;;
    esac
    [[ $how == native ]] && port=$PM_HTTP
    if [[ ${#tls[@]} -gt 0 ]]; then
        case $broker in pathmq) port=$PM_TLS ;; mosquitto) port=$MQ_TLS ;; esac
    fi
    log "rep $rep: $name on $broker"
    if [[ $how == multi ]]; then
        run_multi "$broker" "$name" "$rep" "$port" "$pid" "${argv[@]}"
    elif out=$(RUST_BACKTRACE=0 RUST_LIB_BACKTRACE=0 "$BIN/pathmq-bench" --json --port "$port" --pid "$pid" --prefix "cmp$rep" "${tls[@]}" "${argv[@]}" 2>"$TMP/bench.err"); then
        rep_of "$broker" "$name" "$rep" "$out" >>"$RAW"
    else
        failed "$broker" "$name" "$rep" "$(head -c 400 "$TMP/bench.err" | tr '\n' ' ')"
    fi
    alive "$broker" || failed "$broker" "$name" "$rep" "the broker died during this scenario"
}

# Connections spread over processes (one may hold at most ~19,000 descriptors), 64
# handshakes in flight in all: below both brokers' listen backlog (see docs/BENCHMARKS.md).
run_multi() { # broker scenario rep port pid total processes
    local broker=$1 name=$2 rep=$3 port=$4 pid=$5 total=$6 procs=$7 i hold=5 pids=()
    [[ $QUICK == 1 ]] && hold=2
    for ((i = 0; i < procs; i++)); do
        RUST_BACKTRACE=0 RUST_LIB_BACKTRACE=0 "$BIN/pathmq-bench" --json --port "$port" --pid "$pid" --prefix "cmp$rep-$i" \
            connections --count $((total / procs)) --concurrency $((64 / procs)) --hold "$hold" \
            >"$TMP/multi.$i" 2>"$TMP/multi.$i.err" &
        pids+=($!)
    done
    local ok=1
    for i in "${!pids[@]}"; do wait "${pids[$i]}" || ok=0; done
    if [[ $ok == 0 ]]; then
        failed "$broker" "$name" "$rep" "$(cat "$TMP"/multi.*.err | head -c 400 | tr '\n' ' ')"
        return
    fi
    # One report for all processes: memory from the lowest "before" to the highest reading
    # taken at the end of a hold (all connections of all processes still open).
    out=$(python3 - "$procs" "$TMP" <<'EOF'
import json, sys
procs, tmp = int(sys.argv[1]), sys.argv[2]
rs = [json.loads(open(f"{tmp}/multi.{i}").read()) for i in range(procs)]
connected = sum(r["extra"].get("connected", 0) for r in rs)
before = min((r["extra"]["broker_rss_before_kib"] for r in rs if "broker_rss_before_kib" in r["extra"]), default=None)
held = max((r["extra"]["broker_rss_held_kib"] for r in rs if "broker_rss_held_kib" in r["extra"]), default=None)
seconds = max(r["seconds"] for r in rs)
extra = {"connected": connected, "processes": procs, "failed": sum(r["extra"].get("failed", 0) for r in rs)}
if before is not None and held is not None and connected:
    extra.update(broker_rss_before_kib=before, broker_rss_held_kib=held,
                 per_connection_kib=round((held - before) / connected, 3))
print(json.dumps({"scenario": "connections", "params": f"processes={procs}", "count": connected,
                  "seconds": seconds, "rate": connected / seconds if seconds else 0, "unit": "conn/s",
                  "latency_us": None, "loss": None,
                  "bench_cpu_seconds": sum(r["bench_cpu_seconds"] for r in rs),
                  "broker_rss_kib": held, "extra": extra}))
EOF
    )
    rep_of "$broker" "$name" "$rep" "$out" >>"$RAW"
}

for ((rep = 1; rep <= REPS; rep++)); do
    # Alternate who goes first, so neither always runs on a warmer (or busier) machine.
    if ((rep % 2)); then order=(pathmq mosquitto); else order=(mosquitto pathmq); fi
    for entry in "${SCENARIOS[@]}"; do
        IFS='|' read -r name brokers how argsets <<<"$entry"
        [[ -z $ONLY || $name =~ $ONLY ]] || continue
        if [[ $QUICK == 1 ]]; then args=${argsets#*;}; else args=${argsets%%;*}; fi
        for broker in "${order[@]}"; do
            [[ $brokers == both || $brokers == "$broker" ]] || continue
            run_one "$broker" "$name" "$rep" "$how" "$args"
        done
    done
done

# ---------------------------------------------------------------- the table
python3 - "$RAW" "$REPS" "$QUICK" <<'EOF'
import json, os, statistics, subprocess, sys
raw, reps, quick = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
runs = [json.loads(l) for l in open(raw) if l.strip()]
order = []
for r in runs:
    if r["scenario"] not in order:
        order.append(r["scenario"])

def ok(scenario, broker):
    return [r["report"] for r in runs if r["scenario"] == scenario and r["broker"] == broker and "report" in r]

def errors(scenario, broker):
    return [r for r in runs if r["scenario"] == scenario and r["broker"] == broker and "error" in r]

def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None

def fmt(v, digits=0):
    if v is None:
        return "–"
    if digits == 0:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}"

def cell(scenario, broker, value):
    reports, errs = ok(scenario, broker), errors(scenario, broker)
    v = med([value(r) for r in reports])
    text = fmt(v, 0 if v is None or v >= 100 else 2)
    if errs:
        text += f" ({len(errs)} failed)"
    return v, text

def lat(scenario, broker):
    reports = [r for r in ok(scenario, broker) if r.get("latency_us")]
    if not reports:
        return "–"
    p50 = med([r["latency_us"]["p50"] for r in reports])
    p99 = med([r["latency_us"]["p99"] for r in reports])
    return f"{fmt(p50)} / {fmt(p99)}"

def loss(scenario, broker):
    reports = [r for r in ok(scenario, broker) if r.get("loss")]
    if not reports:
        return "–"
    t = [sum(r["loss"][k] for r in reports) for k in ("lost", "duplicated", "out_of_order")]
    return "/".join(f"{x:,}" for x in t)

def cpu(scenario, broker):
    reports = ok(scenario, broker)
    return fmt(med([r["bench_cpu_seconds"] for r in reports]), 2) if reports else "–"

def broker_cpu(scenario, broker):
    # Broker CPU time per unit of work (message, delivery, connection, request), in µs:
    # what the broker costs per core, independent of how busy the load generator kept it.
    per = [r["extra"]["broker_cpu_seconds"] / r["count"] * 1e6 for r in ok(scenario, broker)
           if r.get("count") and "broker_cpu_seconds" in r.get("extra", {})]
    v = med(per)
    return fmt(v, 0 if v is None or v >= 100 else 2)

def ratio(a, b):
    return f"{a / b:.2f}×" if a is not None and b else "–"

def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=5).stdout.strip()
    except Exception:
        return "?"

machine = sh("uname -srm")
mem = sh("free -g | awk '/Mem:/ {print $2}'")
mosquitto = sh("mosquitto -h 2>/dev/null | head -1")
load = sh("cut -d' ' -f1-3 /proc/loadavg")
note = " — QUICK RUN: counts too small for meaningful figures" if quick else ""
print()
print(f"pathmq vs Mosquitto on {machine}, {os.cpu_count()} cores, {mem} GiB; {mosquitto}; "
      f"medians of {reps} repetition(s){note}; load average at the end: {load}")
print()
print("| scenario | unit | pathmq | mosquitto | pathmq/mosquitto | latency p50 / p99 µs, pathmq | mosquitto | lost/dup/ooo (all reps), pathmq | mosquitto | bench CPU s, pathmq | mosquitto | broker CPU µs per unit, pathmq | mosquitto |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for s in order:
    units = [r["unit"] for r in ok(s, "pathmq") + ok(s, "mosquitto")]
    unit = units[0] if units else "?"
    a, ta = cell(s, "pathmq", lambda r: r["rate"])
    b, tb = cell(s, "mosquitto", lambda r: r["rate"])
    has_mq = any(r["broker"] == "mosquitto" for r in runs if r["scenario"] == s)
    print(f"| {s} | {unit} | {ta} | {tb if has_mq else 'n/a'} | {ratio(a, b)} | {lat(s, 'pathmq')} | "
          f"{lat(s, 'mosquitto') if has_mq else 'n/a'} | {loss(s, 'pathmq')} | {loss(s, 'mosquitto') if has_mq else 'n/a'} | "
          f"{cpu(s, 'pathmq')} | {cpu(s, 'mosquitto') if has_mq else 'n/a'} | "
          f"{broker_cpu(s, 'pathmq')} | {broker_cpu(s, 'mosquitto') if has_mq else 'n/a'} |")
    per = lambda r: r["extra"].get("per_connection_kib")
    if any(per(r) is not None for r in ok(s, "pathmq") + ok(s, "mosquitto")):
        a, ta = cell(s, "pathmq", per)
        b, tb = cell(s, "mosquitto", per)
        n = med([r["count"] for r in ok(s, "pathmq")])
        print(f"| {s}: broker memory per connection{f' ({n:,.0f} open)' if n else ''} | KiB | {ta} | {tb} | {ratio(a, b)} (lower is better) | | | | | | | | |")
tls = {}
for r in runs:
    t = r.get("report", {}).get("extra", {}).get("tls")
    if t:
        tls.setdefault(r["broker"], set()).add(t)
if tls:
    print()
    print("TLS negotiated (`… tls` rows): " + "; ".join(f"{b}: {', '.join(sorted(v))}" for b, v in sorted(tls.items())))
failures = [r for r in runs if "error" in r]
if failures:
    print()
    print("Skipped (failed) runs:")
    for r in failures:
        print(f"- {r['scenario']} on {r['broker']}, rep {r['rep']}: {r['error']}")
print()
print("Rates are medians of the repetitions that succeeded; latency medians of each run's p50/p99;")
print("loss summed over all repetitions. Ratio > 1: pathmq is faster (for memory: pathmq uses more).")
print("Broker CPU per unit: the broker's CPU time (user + system, /proc/<pid>/stat) over the whole")
print("run, divided by the messages, deliveries, connections or requests counted.")
EOF
