#!/usr/bin/env bash
# Migration benchmark in a 2-host lab (n1 -> n2): hvnoded's own path against QEMU's native
# migration, then quick migration. One run; prints tables; never a pass/fail test: the targets
# are printed with "meets" or "misses", and the exit status is non-zero only when something
# did not run (a migration failed, a tool is missing).
#
# 1. Live, 512 MiB test guest (tests/guest/hvguest.elf, interval_ms=20, dirty_mb 0, 32, 128:
#    it rewrites that much of its RAM with new data on every pass), downtime limit 300 ms, no
#    bandwidth limit (QEMU's max-bandwidth and ours), for each link and dirty data:
#      links   veth   the lab's veth pair as it is: memory speed, so only CPU limits a path
#              1gbit  the migration traffic of both paths shaped to 1 Gbit/s on each host
#                     (tc: htb on eth0, see set_link), the guest's iSCSI and corosync
#                     not: a 1 Gbit/s migration network of its own, as many clusters have
#      data    counter  what the guest writes: a counter per word, incompressible for LZ4
#              text     half text phrases, half random bytes: about 1.8:1 with LZ4
#                       (tests/guest/hvguest.c, dirty_data=); dirty_mb=0 has no dirty data,
#                       so it runs once per link
#      ours    `hvctl vm migrate NAME --to n2 --mode live --wait --json`: QEMU streams into an
#              fd, hvnoded LZ4-compresses it over ZeroMQ+CURVE, then hands the LUN over
#              (the VM's disk is an iSCSI LUN of the lab's san, served to QEMU by nbdkit)
#      native  two QEMUs started here inside n1 and n2 with the same machine options,
#              `migrate tcp:10.77.0.12:PORT` over QMP after migrate-set-parameters
#              downtime-limit=300 max-bandwidth=1e12 (QEMU 7.2's default is 128 MiB/s)
#              (hvnoded sets its QEMU's downtime-limit 100 ms lower: the handoff's share);
#              the disk is one raw file both hosts see (cache=none), so nothing to hand over
#    Columns:
#      total     each path's own figure: ours: total_ms of last_migration (the source's start
#                of the migration -> it released the VM to the target); native: wall time from
#                `migrate` to the destination's query-status "running"; its destination QEMU
#                was started beforehand (ours starts it on request): the time that took is
#                printed under the table
#      to n2     the same measure for both: from the request (hvctl's start inside n1, not
#                `lab exec`'s; QMP `migrate`) to the guest's first commit line on n2 (within
#                the guest's 20 ms interval)
#      downtime  what hvnoded reports: QEMU's own figure (query-migrate "downtime") for live;
#                for quick, from its pause of the guest to the release of the VM on the source
#      hb gap    the longest wall-clock gap between consecutive "commit" lines of the guest,
#                from the last one before the migration to the first one on n2, as seen
#                arriving in the source's then the destination's console file by
#                heartbeat-watch.py (polls both every 5 ms); "base" is the longest gap
#                before the migration: the guest's normal jitter under TCG
#      wire MB   ours: wire_bytes (compressed, what crossed the network); native: ram.transferred
#                of query-migrate (RAM only; QEMU has no compression in this mode); "raw MB"
#                is ours before compression
#      cpu s     utime+stime (/proc/PID/stat, sampled every 5 ms, an exiting process keeps its
#                last sample) of the QEMU processes on n1 and n2 and, for ours, of hvnoded on
#                both hosts (its compression and stream threads), from the migration request
#                to the guest's first commit on n2 (not to hvctl's return: it polls every 500 ms)
#      vcpu s    of which in QEMU's vCPU threads: the guest's own work (under TCG a dirtying
#                guest keeps one core busy), not the migration's; cpu - vcpu is the cost
#    then ours/native of the total time for each dirty case.
# 2. Quick migration (ours, --mode quick: pause, save, hand over, resume) of an idle guest
#    (dirty_mb=0) of 256 MiB and of 1 GiB: QEMU's downtime figure, heartbeat gap, total.
# 3. The targets next to the results: live "to n2" <= 0.7x native's on the compressible cases
#    (data text, and the idle guest whose stream compresses 2:1); the incompressible ones
#    (data counter) are shown for what they cost, n/a; downtime <= the 300 ms limit (QEMU's
#    figure, and the guest's own pause, hb gap, under it); quick migration of the idle 1 GiB
#    guest < 2 s (hb gap, and total).
#
#   tests/bench/bench_migrate.sh            files (consoles, JSON, logs) in tests/results/bench-migrate/
#   BENCH_PARTS="live native quick"         the parts to run (default all three; "native" alone
#                                           runs without hvnoded: HVNODED=none works then)
#   BENCH_LINKS="veth 1gbit"                the links (any tc rate works: 10gbit, 500mbit)
#   BENCH_DATA="counter text"               the guest's dirty data
#   BENCH_DIRTY="0 32 128"                  the dirty_mb cases
#   MIG_TIMEOUT_S=120                       a migration that takes longer is cancelled (>= 5);
#                                           one that never converged (a guest dirtying faster
#                                           than the link takes) is a result ("no conv."), not
#                                           a failure of the bench
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/it/lib.sh

parts=${BENCH_PARTS:-live native quick}
has_part() { [[ " $parts " == *" $1 "* ]]; }
guest=$top/tests/guest/hvguest.elf
watch=$top/tests/bench/heartbeat-watch.py
out=$top/tests/results/bench-migrate
qemu=${QEMU:-qemu-system-x86_64}
downtime_ms=300
mig_timeout=${MIG_TIMEOUT_S:-120}
read -r -a dirties <<<"${BENCH_DIRTY:-0 32 128}"
read -r -a links <<<"${BENCH_LINKS:-veth 1gbit}"
read -r -a datas <<<"${BENCH_DATA:-counter text}"
port=4480 # native's ports: 4481.. (set_link matches 4480-4511)

for tool in python3 "$qemu" truncate tc; do
	command -v "$tool" >/dev/null || fail "$tool not found"
done
[ -f "$guest" ] || fail "$guest missing (make all)"
if has_part live || has_part quick; then
	[ -x "$top/hvnoded" ] || [ "${HVNODED:-}" != "" ] || fail "$top/hvnoded missing (make all)"
fi
rm -rf "$out"
mkdir -p "$out"

export LAB_ID=${LAB_ID:-bm$$}
export LAB_MEMORY_MB=${LAB_MEMORY_MB:-4096}
watchers=()
# bench_cleanup STATUS: our watchers, the daemons' logs, then lib.sh's lab_cleanup (lab down,
# exit STATUS); the native QEMUs die with the lab's hosts (lab down kills their cgroups)
bench_cleanup() {
	local rc=$1 p
	set +e # a trap under set -e would stop at the first failing command
	for p in "${watchers[@]}"; do kill "$p" 2>/dev/null; done
	for p in n1 n2; do
		cp "$("$lab" path "$p" 2>/dev/null)/log/hvnoded.log" "$out/$p-hvnoded.log" 2>/dev/null
		for c in "$("$lab" path "$p" 2>/dev/null)"/run/hvcluster/vms/*/console.log; do
			[ -f "$c" ] && cp "$c" "$out/$p-$(basename "$(dirname "$c")").console"
		done
	done
	(exit "$rc")
	lab_cleanup
}
trap 'bench_cleanup $?' EXIT # instead of lab_up()'s
"$lab" up 2 --luns $((${#links[@]} * (1 + 2 * ${#datas[@]}) + 2)) --lun-size 16M >"$out/lab-up.log" 2>&1 || fail "lab up: $(cat "$out/lab-up.log")"
on() { local h=$1; shift; "$lab" exec "$h" -- "$@"; }
labj=$("$lab" status --json)
addr() { jget "$labj" "[h['addr'] for h in j['hosts'] if h['name'] == '$1'][0]"; }
netns() { echo "/run/netns/hvl-$LAB_ID-$1"; }
now_ms() { date +%s%3N; }
failures=()

# set_link LINK: veth as it is, or the migration traffic of both paths (to our port 7790, to
# native's ports 4480-4511) shaped to a rate on each host's egress, in an htb class of its own
# (everything else in an unshaped one, served first): a migration network of its own, as
# clusters have, whose traffic never delays the guest's disk (iSCSI) or corosync; sharing one
# saturated queue, a dropped iSCSI packet held the guest's next commit back by TCP's
# retransmission backoff, seconds.
set_link() {
	local h ns
	for h in n1 n2; do
		ns=hvl-$LAB_ID-$h
		ip netns exec "$ns" tc qdisc del dev eth0 root 2>/dev/null || true
		[ "$1" = veth ] && continue
		ip netns exec "$ns" tc qdisc add dev eth0 root handle 1: htb default 10 r2q 1000 &&
			ip netns exec "$ns" tc class add dev eth0 parent 1: classid 1:10 htb \
				rate 40gbit burst 1mb cburst 1mb prio 0 quantum 200000 &&
			ip netns exec "$ns" tc class add dev eth0 parent 1: classid 1:20 htb \
				rate "$1" ceil "$1" burst 512kb cburst 512kb prio 1 &&
			ip netns exec "$ns" tc filter add dev eth0 parent 1: protocol ip prio 1 u32 \
				match ip dport 7790 0xffff flowid 1:20 &&
			ip netns exec "$ns" tc filter add dev eth0 parent 1: protocol ip prio 2 u32 \
				match ip dport 4480 0xffe0 flowid 1:20 ||
			fail "tc: cannot shape the migration traffic of $h to $1"
	done
}
# cases LINK DATA: the dirty amounts of that table (the idle guest once per link)
cases() { if [ "$2" = "${datas[0]}" ]; then echo "${dirties[@]}"; else echo "${dirties[@]:1}"; fi; }

# ---------------------------------------------------------------- QMP (native runs)

# qmp_py cmd SOCKET CMD [JSON-ARGS]: prints the "return" of CMD; fails on an error reply
# qmp_py migrate SRC-SOCK DST-SOCK URI WATCHER-PID DOWNTIME-MS TIMEOUT-S: the native live
#   migration, the watcher told when it starts (SIGUSR1) and ends (SIGUSR2); prints JSON
qmp_py() {
	python3 - "$@" <<'EOF'
import json, os, signal, socket, sys, time

class QMP:
    def __init__(self, path, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX)
                self.s.connect(path)
                break
            except OSError:
                self.s.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.f = self.s.makefile("rb")
        json.loads(self.f.readline())  # greeting
        self.cmd("qmp_capabilities")

    def cmd(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.s.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            line = self.f.readline()
            if not line:
                raise SystemExit(f"QMP: connection closed during {name}")
            r = json.loads(line)
            if "event" in r:
                continue
            if "error" in r:
                raise SystemExit(f"QMP {name}: {r['error'].get('class')}: {r['error'].get('desc')}")
            return r.get("return")

what = sys.argv[1]
if what == "cmd":
    q = QMP(sys.argv[2])
    args = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
    print(json.dumps(q.cmd(sys.argv[3], **args)))
    sys.exit(0)

# migrate SRC DST URI WATCHER DOWNTIME_MS TIMEOUT_S
src, dst = QMP(sys.argv[2]), QMP(sys.argv[3])
uri, watcher, downtime, timeout = sys.argv[4], int(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7])
src.cmd("migrate-set-parameters", **{"downtime-limit": downtime, "max-bandwidth": 10**12})
os.kill(watcher, signal.SIGUSR1)
t0 = time.monotonic()
src.cmd("migrate", uri=uri)
res = {"result": "failed"}
while True:
    m = src.cmd("query-migrate")
    st = m.get("status")
    if st == "completed":
        break
    if st in ("failed", "cancelled"):
        res["reason"] = m.get("error-desc", st)
        break
    if time.monotonic() - t0 > timeout:
        src.cmd("migrate_cancel")
        res["reason"] = f"not converged after {timeout:.0f} s (status {st})"
        break
    time.sleep(0.01)
if st == "completed":
    while dst.cmd("query-status").get("status") != "running":
        if time.monotonic() - t0 > timeout + 30:
            res["reason"] = "the destination did not run"
            break
        time.sleep(0.005)
    else:
        res["result"] = "completed"
t1 = time.monotonic()
os.kill(watcher, signal.SIGUSR2)
m = src.cmd("query-migrate")
ram = m.get("ram", {})
res.update({"total_ms": round((t1 - t0) * 1000), "qemu_total_ms": m.get("total-time"),
            "downtime_ms": m.get("downtime"), "setup_ms": m.get("setup-time"),
            "wire_bytes": ram.get("transferred"), "raw_bytes": ram.get("transferred"),
            "dirty_sync_count": ram.get("dirty-sync-count"), "mbps": ram.get("mbps")})
print(json.dumps(res))
EOF
}
qmp() { qmp_py cmd "$@"; }

# ---------------------------------------------------------------- the watcher

# watch_start NAME SRC-CONSOLE DST-CONSOLE COMM-REGEX: starts heartbeat-watch.py; sets wpid
watch_start() {
	local name=$1
	rm -f "$out/$name.watch.json" "$out/$name.watch.json.ready"
	python3 "$watch" --out "$out/$name.watch.json" --src "$2" --dst "$3" \
		--netns "$(netns n1)" --netns "$(netns n2)" --comm "$4" &
	wpid=$!
	watchers+=("$wpid")
	wait_for 10 "watcher of $name polling" test -e "$out/$name.watch.json.ready"
	sleep 2 # the guest's normal commit jitter, for "base"
}

# watch_end NAME: the watcher's result (it ends after its SIGUSR2 and a commit on n2) in W
watch_end() {
	kill -USR1 "$wpid" 2>/dev/null || true # no-ops if it had them already
	kill -USR2 "$wpid" 2>/dev/null || true
	wait "$wpid" 2>/dev/null || true
	[ -e "$out/$1.watch.json" ] || fail "heartbeat watcher of $1 wrote no result"
	W=$(cat "$out/$1.watch.json")
}

# wait_commits FILE: until the guest's console shows commits (then a few seconds more, so that
# the dirtying runs at full speed)
wait_commits() {
	wait_for 60 "commits in ${1#"$top"/}" grep -aq '^commit seq=' "$1"
	sleep 3
}

# ---------------------------------------------------------------- native runs

declare -A R # R[case.field]: results

native_live() { # LINK DATA DIRTY
	local d=$3 name=native-$1-$2-d$3 c=native.$1.$2.$3 args src dst res t0
	local img=$out/$name.img
	truncate -s 16M "$img"
	args=(-name "guest=$name,debug-threads=on" -nodefaults -no-user-config -display none -machine pc -accel tcg
		-smp 1 -m 512M -kernel "$guest" -append "interval_ms=20 dirty_mb=$d dirty_data=$2"
		-drive "file=$img,if=none,id=disk0,format=raw,cache=none"
		-device "ide-hd,drive=disk0,id=disk0-dev,bus=ide.0,unit=0,write-cache=on,werror=stop,rerror=stop")
	src=$out/$name-src dst=$out/$name-dst
	rm -f "$src".* "$dst".*
	on n1 "$qemu" "${args[@]}" -serial "file:$src.console" -qmp "unix:$src.qmp,server=on,wait=off" \
		-S -daemonize -pidfile "$src.pid" >"$src.qemu.log" 2>&1 || fail "$name: source QEMU: $(cat "$src.qemu.log")"
	port=$((port + 1))
	t0=$(now_ms)
	on n2 "$qemu" "${args[@]}" -serial "file:$dst.console" -qmp "unix:$dst.qmp,server=on,wait=off" \
		-incoming "tcp:0.0.0.0:$port" -daemonize -pidfile "$dst.pid" >"$dst.qemu.log" 2>&1 ||
		fail "$name: destination QEMU: $(cat "$dst.qemu.log")"
	qmp "$dst.qmp" query-status >/dev/null
	R[$c.dst_start_ms]=$(($(now_ms) - t0))
	qmp "$src.qmp" cont >/dev/null
	wait_commits "$src.console"
	watch_start "$name" "$src.console" "$dst.console" '^qemu-system'
	log "$name: migrating live n1 -> n2 (native tcp:, link $1, data $2)"
	res=$(qmp_py migrate "$src.qmp" "$dst.qmp" "tcp:$(addr n2):$port" "$wpid" "$downtime_ms" \
		"$mig_timeout") || res='{"result":"failed","reason":"QMP driver failed"}'
	watch_end "$name"
	echo "$res" >"$out/$name.json"
	record "$c" "$res" "$W"
	qmp "$src.qmp" quit >/dev/null 2>&1 || true
	qmp "$dst.qmp" quit >/dev/null 2>&1 || true
	rm -f "$img"
}

# record CASE MIGRATION-JSON WATCH-JSON: into R[CASE.*]
record() {
	local c=$1 f v
	for f in result reason total_ms downtime_ms wire_bytes raw_bytes; do
		v=$(jget "$2" "j.get('$f')")
		R[$c.$f]=$v
	done
	for f in max_gap_ms base_gap_ms first_dst_ms cpu_s vcpu_s; do
		v=$(jget "$3" "j.get('$f')")
		R[$c.$f]=$v
	done
	if [[ ${R[$c.reason]} == "not converged after"* ]]; then
		R[$c.result]="no conv."
		log "$c: ${R[$c.reason]}"
	elif [ "${R[$c.result]}" != completed ]; then
		failures+=("$c: ${R[$c.result]}: ${R[$c.reason]}")
		log "$c: FAILED: ${R[$c.reason]}"
	else
		log "$c: $(jget "$2" 'json.dumps(j)')"
		log "$c: watcher: $3"
	fi
}

# ---------------------------------------------------------------- our runs

lun_i=0
mapfile -t luns < <("$lab" luns)
ours() { # MODE DIRTY MEMORY CASE [DATA]
	local mode=$1 d=$2 mem=$3 c=$4 data=${5:-counter} name res src_c dst_c rc=0 t0 t1 from to
	name=${c//./-}
	on n1 hvctl vm create "$name" --vcpus 1 --memory "$mem" --disk "${luns[$lun_i]},bus=ide" \
		--kernel "$guest" --append "interval_ms=20 dirty_mb=$d dirty_data=$data" \
		--prefer n1 >/dev/null ||
		fail "create $name"
	lun_i=$((lun_i + 1))
	on n1 hvctl vm start "$name" >/dev/null || fail "start $name"
	from=$(jget "$(on n1 hvctl vm show "$name" --json)" 'j.get("assigned_node")')
	case $from in
	n1) to=n2 ;;
	n2) to=n1 ;; # --prefer is a preference; the direction makes no difference here
	*) fail "$name: assigned to '$from' after start" ;;
	esac
	src_c=$("$lab" path "$from")/run/hvcluster/vms/$name/console.log
	dst_c=$("$lab" path "$to")/run/hvcluster/vms/$name/console.log
	wait_commits "$src_c"
	watch_start "$name" "$src_c" "$dst_c" '^(qemu-system|hvnoded$)'
	log "$name: migrating $mode $from -> $to (hvctl)"
	t0=$(now_ms)
	kill -USR1 "$wpid"
	# hvctl's own start, stamped inside the host: `lab exec` takes some 60 ms to get there,
	# which no admin's migration pays; "to n2" counts from it
	res=$(on n1 sh -c 'date +%s%3N >"$1"; shift; exec "$@"' sh "$out/$name.t-hvctl" \
		hvctl vm migrate "$name" --to "$to" --mode "$mode" --wait --json 2>&1) || rc=$?
	t1=$(now_ms)
	watch_end "$name"
	W=$(python3 -c 'import json, sys
w = json.loads(sys.argv[1]); late = int(sys.argv[2]) - int(sys.argv[3])
if w.get("first_dst_ms") is not None and 0 <= late < w["first_dst_ms"]:
    w["first_dst_ms"] -= late
    w["hvctl_late_ms"] = late
print(json.dumps(w))' "$W" "$(cat "$out/$name.t-hvctl" 2>/dev/null || echo "$t0")" "$t0")
	echo "$res" >"$out/$name.json"
	log "$name: hvctl exited $rc after $((t1 - t0)) ms"
	if ! jget "$res" 'j["result"]' >/dev/null 2>&1; then
		res=$(python3 -c 'import json,sys; print(json.dumps({"result": "failed",
			"reason": "hvctl exited %s: %s" % (sys.argv[1], sys.argv[2].strip()[-400:])}))' "$rc" "$res")
	fi
	if [ "$(jget "$res" 'j["result"]')" != completed ]; then
		"$lab" logs n1 hvnoded >"$out/$name.n1-hvnoded.log" 2>&1 || true
		"$lab" logs n2 hvnoded >"$out/$name.n2-hvnoded.log" 2>&1 || true
	fi
	record "$c" "$res" "$W"
	on n1 hvctl vm stop "$name" >/dev/null 2>&1 || log "$name: stop failed"
}

# ---------------------------------------------------------------- run

if has_part live || has_part quick; then
	wait_online 2
	on n1 hvctl settings migrate_downtime_ms=$downtime_ms migrate_bandwidth_mbps=0 \
		migrate_compress=yes migrate_threads=1 migrate_timeout_s="$mig_timeout" >/dev/null ||
		fail "hvctl settings"
fi
for l in "${links[@]}"; do
	set_link "$l"
	for data in "${datas[@]}"; do
		for d in $(cases "$l" "$data"); do
			if has_part live; then ours live "$d" 512M "live.$l.$data.$d" "$data"; fi
			if has_part native; then native_live "$l" "$data" "$d"; fi
		done
	done
done
set_link veth
if has_part quick; then
	ours quick 0 256M quick.256m
	ours quick 0 1024M quick.1g
fi

# ---------------------------------------------------------------- tables

v() { local x=${R[$1]:-}; [ -n "$x" ] && [ "$x" != None ] && echo "$x" || echo -; }
mb() { local x; x=$(v "$1"); [ "$x" = - ] && echo - || awk -v b="$x" 'BEGIN { printf "%.1f", b / 1048576 }'; }
sec() { local x; x=$(v "$1"); [ "$x" = - ] && echo - || awk -v m="$x" 'BEGIN { printf "%.2f", m / 1000 }'; }
ok() { [ "$(v "$1.result")" = completed ]; }
# dt CASE: the downtime hvnoded reports: QEMU's figure (live), the pause until the source
# released the VM (quick)
dt() { v "$1.downtime_ms"; }

targets=()
fmt='%-8s %-6s %-9s %8s %7s %9s %7s %7s %8s %8s %6s %6s\n'
for l in "${links[@]}"; do
	for data in "${datas[@]}"; do
		echo
		echo "Live migration n1 -> n2, 512 MiB test guest, link $l, dirty data $data," \
			"downtime limit ${downtime_ms} ms, no bandwidth limit"
		printf "$fmt" dirty_mb path result "total s" "to n2 s" "downtime" "hb gap" "base" \
			"wire MB" "raw MB" "cpu s" "vcpu s"
		for d in $(cases "$l" "$data"); do
			for p in live native; do
				has_part "$p" || continue
				c=$p.$l.$data.$d
				printf "$fmt" "$d" "$([ $p = live ] && echo ours || echo native)" \
					"$(v "$c.result")" "$(sec "$c.total_ms")" "$(sec "$c.first_dst_ms")" \
					"$(dt "$c")" "$(v "$c.max_gap_ms")" "$(v "$c.base_gap_ms")" \
					"$(mb "$c.wire_bytes")" \
					"$([ $p = live ] && mb "$c.raw_bytes" || echo -)" "$(v "$c.cpu_s")" \
					"$(v "$c.vcpu_s")"
			done
		done
		if has_part native; then
			printf '(native: starting the destination QEMU -incoming beforehand took'
			for d in $(cases "$l" "$data"); do printf ' %s' "$(v "native.$l.$data.$d.dst_start_ms")"; done
			echo ' ms; not in either of its times)'
		fi
		if has_part live && has_part native; then
			echo "ours/native, request to the guest's first commit on n2 (\"to n2\"), and each path's total:"
			for d in $(cases "$l" "$data"); do
				a=live.$l.$data.$d b=native.$l.$data.$d
				what="live to n2 <= 0.7x native, link $l, dirty_mb=$d"
				[ "$d" = 0 ] && what+=" (idle)" || what+=" ($data)"
				if ok "$a" && [ "$(v "$b.result")" = "no conv." ]; then
					echo "  dirty_mb=$d: native did not converge within ${mig_timeout} s, ours did"
					[ "$d" = 0 ] || [ "$data" = text ] &&
						targets+=("$what|native no conv.|meets")
					continue
				fi
				if ! ok "$a" || ! ok "$b"; then
					echo "  dirty_mb=$d: - (a migration failed)"
					continue
				fi
				ratio=$(awk -v a="${R[$a.first_dst_ms]}" -v b="${R[$b.first_dst_ms]}" \
					'BEGIN { printf "%.2f", a / b }')
				tratio=$(awk -v a="${R[$a.total_ms]}" -v b="${R[$b.total_ms]}" \
					'BEGIN { printf "%.2f", a / b }')
				comp=$(awk -v r="${R[$a.raw_bytes]}" -v w="${R[$a.wire_bytes]}" \
					'BEGIN { printf "%.1f", (w > 0) ? r / w : 0 }')
				iratio=$(awk -v a="${R[$a.first_dst_ms]}" -v b="${R[$b.first_dst_ms]}" \
					-v s="${R[$b.dst_start_ms]:-0}" 'BEGIN { printf "%.2f", a / (b + s) }')
				echo "  dirty_mb=$d: $ratio  (with native's destination start: $iratio;" \
					"totals: $tratio; our stream compressed ${comp}:1)"
				if [ "$d" = 0 ] || [ "$data" = text ]; then
					targets+=("$what, ${comp}:1|$ratio x|$(awk -v r="$ratio" 'BEGIN { print (r <= 0.7) ? "meets" : "misses" }')")
				else
					targets+=("$what, ${comp}:1|$ratio x|n/a")
				fi
			done
		fi
		if has_part live; then
			for d in $(cases "$l" "$data"); do
				c=live.$l.$data.$d
				ok "$c" || continue
				x=$(v "$c.downtime_ms")
				targets+=("live downtime <= ${downtime_ms} ms, link $l, $data, dirty_mb=$d (QEMU's figure)|$x ms|$([ "$x" != - ] && [ "$x" -le $downtime_ms ] && echo meets || echo misses)")
				x=$(v "$c.max_gap_ms")
				targets+=("  as the guest sees it: hb gap <= ${downtime_ms} ms|$x ms|$([ "$x" != - ] && [ "$x" -le $downtime_ms ] && echo meets || echo misses)")
			done
		fi
	done
done

if has_part quick; then
	echo
	echo "Quick migration n1 -> n2 (ours), idle test guest (dirty_mb=0)"
	fmt='%-8s %-9s %8s %9s %7s %7s %8s %6s %6s\n'
	printf "$fmt" memory result "total s" "downtime" "hb gap" "base" "wire MB" "cpu s" "vcpu s"
	for c in quick.256m quick.1g; do
		printf "$fmt" "${c#quick.}" "$(v "$c.result")" "$(sec "$c.total_ms")" \
			"$(dt "$c")" "$(v "$c.max_gap_ms")" "$(v "$c.base_gap_ms")" \
			"$(mb "$c.wire_bytes")" "$(v "$c.cpu_s")" "$(v "$c.vcpu_s")"
	done
	if ok quick.1g; then
		g=$(v quick.1g.max_gap_ms)
		targets+=("quick, idle 1 GiB: guest stopped < 2 s (hb gap; hvnoded: paused $(dt quick.1g) ms until released)|$g ms|$([ "$g" != - ] && [ "$g" -lt 2000 ] && echo meets || echo misses)")
		t=$(v quick.1g.total_ms)
		targets+=("quick, idle 1 GiB: total < 2 s|$t ms|$([ "$t" != - ] && [ "$t" -lt 2000 ] && echo meets || echo misses)")
	fi
fi

if [ ${#targets[@]} -gt 0 ]; then
	echo
	echo "Targets"
	for t in "${targets[@]}"; do
		IFS='|' read -r what got verdict <<<"$t"
		printf '  %-82s %10s  %s\n' "$what" "$got" "$verdict"
	done
fi
echo
echo "(times in ms unless said; hb gap = longest wall-clock gap between the guest's commits,"
echo " base = the same before the migration; files in ${out#"$top"/})"
if [ ${#failures[@]} -gt 0 ]; then
	echo
	echo "FAILED migrations:"
	for f in "${failures[@]}"; do echo "  $f"; done
	exit 1
fi
