#!/usr/bin/env bash
# Isolation between VMs on one host (issue 8, item 4): two test guests on n1 of
# a 1-host lab. As VM a's uid, VM b's QMP socket, disk server socket, console
# log and dir are out of reach (EACCES/EPERM), and the same probes succeed on
# a's own files (the control: a probe that cannot succeed proves nothing).
# QEMUs run under distinct non-root uids, no groups, no_new_privs, seccomp, and
# neither maps a file of the other's dir. Links and FIFOs a VM's uid plants in its
# own dir neither block hvnoded nor lend it root's hand. A stopped VM's dir is
# root's again: VM c, started with b's freed uid, reads nothing b left.
set -euo pipefail
. tests/it/lib.sh

guest=$top/tests/guest/hvguest.elf

export LAB_ID=${LAB_ID:-iso$$}
lab_up 1 --luns 3
wait_online 1

mapfile -t luns < <("$lab" luns)
[ ${#luns[@]} -ge 3 ] || fail "lab has ${#luns[@]} LUNs, want 3"

on() { "$lab" exec n1 -- "$@"; }
vmj() { on hvctl vm show "$1" --json; }

for i in 0 1; do
	name=$([ $i = 0 ] && echo a || echo b)
	on hvctl vm create "$name" --vcpus 1 --memory 32M --disk "${luns[i]},bus=ide" \
		--kernel "$guest" --prefer n1 >/dev/null || fail "vm create $name"
	on hvctl vm start "$name" >/dev/null || fail "vm start $name"
done
for name in a b; do
	wait_for 60 "$name writes on its console" bash -c \
		"$lab exec n1 -- hvctl vm console-log $name --lines 50 | grep '^commit seq=' >/dev/null"
done

ja=$(vmj a)
jb=$(vmj b)
for f in state node; do
	[ "$(jget "$ja" "j['$f']")" = "$(jget "$jb" "j['$f']")" ] || fail "a and b differ in $f: $ja / $jb"
done
[ "$(jget "$ja" 'j["state"]')" = running ] || fail "a is not running: $ja"
uid_a=$(jget "$ja" 'j["uid"]')
uid_b=$(jget "$jb" 'j["uid"]')
pid_a=$(jget "$ja" 'j["pid"]')
pid_b=$(jget "$jb" 'j["pid"]')
dir_a=$(jget "$ja" 'j["dir"]')
dir_b=$(jget "$jb" 'j["dir"]')
log "a: uid $uid_a pid $pid_a $dir_a; b: uid $uid_b pid $pid_b $dir_b"

log "the QEMUs: distinct non-root uids, no groups, no_new_privs, seccomp filter"
[ "$uid_a" != "$uid_b" ] || fail "a and b share uid $uid_a"
for v in "a $pid_a $uid_a" "b $pid_b $uid_b"; do
	set -- $v
	st=$(on cat /proc/$2/status)
	ids=$(awk '/^Uid:/ {print $2, $3, $4, $5}' <<<"$st")
	[ "$ids" = "$3 $3 $3 $3" ] || fail "QEMU of $1: Uid (real eff saved fs) are '$ids', want $3"
	ids=$(awk '/^Gid:/ {print $2, $3, $4, $5}' <<<"$st")
	[ "$ids" = "$3 $3 $3 $3" ] || fail "QEMU of $1: Gid (real eff saved fs) are '$ids', want $3"
	[ "$3" -ne 0 ] || fail "QEMU of $1 runs as root"
	[ -z "$(awk '/^Groups:/ {$1 = ""; print}' <<<"$st" | tr -d ' ')" ] ||
		fail "QEMU of $1 has supplementary groups: $(grep '^Groups:' <<<"$st")"
	[ "$(awk '/^NoNewPrivs:/ {print $2}' <<<"$st")" = 1 ] || fail "QEMU of $1 lacks no_new_privs"
	[ "$(awk '/^Seccomp:/ {print $2}' <<<"$st")" = 2 ] || fail "QEMU of $1 has no seccomp filter"
done

log "the disk servers: one per VM, under the VM's uid"
for v in "a $dir_a $uid_a" "b $dir_b $uid_b"; do
	set -- $v
	pids=$(on pgrep -f -- "--unix $2/disk0.sock") || fail "no disk server of $1 found"
	for p in $pids; do
		ids=$(on awk '/^Uid:/ {print $2, $3, $4, $5}' /proc/$p/status)
		[ "$ids" = "$3 $3 $3 $3" ] || fail "disk server $p of $1 runs as '$ids', want $3"
	done
done

log "no shared memory: neither QEMU maps a file of the other's dir or of /dev/shm"
maps_a=$(on cat /proc/$pid_a/maps)
maps_b=$(on cat /proc/$pid_b/maps)
[ -n "$maps_a" ] && [ -n "$maps_b" ] || fail "cannot read the QEMUs' maps"
grep -F " $dir_b/" <<<"$maps_a" && fail "a's QEMU maps a file of b's dir"
grep -F " $dir_a/" <<<"$maps_b" && fail "b's QEMU maps a file of a's dir"
grep -F ' /dev/shm/' <<<"$maps_a$maps_b" && fail "a QEMU maps a file of /dev/shm"
log "no page merged between guests: QEMU runs with mem-merge=off, no mapping is KSM-mergeable"
for v in "a $pid_a" "b $pid_b"; do
	set -- $v
	cmd=$(on cat "/proc/$2/cmdline" | tr '\0' ' ')
	grep -q -- '-machine pc,mem-merge=off' <<<"$cmd" || fail "QEMU of $1 runs without mem-merge=off: $cmd"
	# VmFlags "mg": madvise(MADV_MERGEABLE), what QEMU does to guest RAM unless mem-merge=off
	on grep '^VmFlags:.* mg' "/proc/$2/smaps" && fail "QEMU of $1 has KSM-mergeable memory"
done

log "modes as hvnoded made them"
for v in "a $dir_a $uid_a" "b $dir_b $uid_b"; do
	set -- $v
	[ "$(on stat -c '%a %u %g' "$2")" = "700 $3 $3" ] || fail "dir of $1: $(on stat -c '%a %u %g' "$2")"
	for f in qmp.sock console.log; do
		[ "$(on stat -c '%a %u' "$2/$f")" = "600 $3" ] || fail "$1's $f: $(on stat -c '%a %u' "$2/$f")"
	done
	# nbdkit sets its own umask 022, so its socket is 0755: connect needs write
	# permission, which only the owner has (and the 0700 dir is in the way anyway)
	m=$(on stat -c '%a %u' "$2/disk0.sock")
	[ "${m#* }" = "$3" ] && [ $((8#${m% *} & 8#022)) = 0 ] || fail "$1's disk0.sock: $m"
done
on test -S "$dir_b/qmp.sock" && on test -S "$dir_b/disk0.sock" || fail "b's sockets are not sockets"

# probe OP PATH: one attempt, as the uid it runs under; prints "ok" or the errno name.
probe='
import errno, os, signal, socket, sys
op, path = sys.argv[1], sys.argv[2]
try:
    if op == "connect":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(path)
        s.close()
    elif op == "read":
        with open(path, "rb") as f:
            f.read(1)
    elif op == "list":
        os.listdir(path)
    elif op == "write":
        p = os.path.join(path, "isolation-probe.%d" % os.getpid())
        os.close(os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.unlink(p)
    elif op == "signal":
        os.kill(int(path), 0)
    print("ok")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
'
# as UID OP PATH: the probe's verdict with UID as real and effective uid and gid, no groups
as() {
	local uid=$1
	shift
	on setpriv --reuid="$uid" --regid="$uid" --clear-groups /usr/bin/python3 -c "$probe" "$@"
}
expect() { # want uid op path what
	local got
	got=$(as "$2" "$3" "$4") || fail "probe $3 $4 as uid $2 did not run"
	case "$1:$got" in
	ok:ok | denied:EACCES | denied:EPERM) log "ok: $5 ($got)" ;;
	*) fail "$5: $3 $4 as uid $2 gave $got, want $1" ;;
	esac
}

log "as a's uid $uid_a: a's own QMP, disk socket, console, dir and process are reachable"
expect ok "$uid_a" connect "$dir_a/qmp.sock" "a connects to its QMP socket"
expect ok "$uid_a" connect "$dir_a/disk0.sock" "a connects to its disk server"
expect ok "$uid_a" read "$dir_a/console.log" "a reads its console log"
expect ok "$uid_a" list "$dir_a" "a lists its dir"
expect ok "$uid_a" write "$dir_a" "a writes into its dir"
expect ok "$uid_a" signal "$pid_a" "a may signal its QEMU"

log "as a's uid $uid_a: nothing of b is"
expect denied "$uid_a" connect "$dir_b/qmp.sock" "a cannot connect to b's QMP socket"
expect denied "$uid_a" connect "$dir_b/disk0.sock" "a cannot connect to b's disk server"
expect denied "$uid_a" read "$dir_b/console.log" "a cannot read b's console log"
expect denied "$uid_a" list "$dir_b" "a cannot list b's dir"
expect denied "$uid_a" write "$dir_b" "a cannot write into b's dir"
expect denied "$uid_a" signal "$pid_b" "a cannot signal b's QEMU"
expect denied "$uid_a" list "$(dirname "$dir_a")" "a cannot list the VM dirs"

log "and the other way round"
expect denied "$uid_b" connect "$dir_a/qmp.sock" "b cannot connect to a's QMP socket"
expect denied "$uid_b" connect "$dir_a/disk0.sock" "b cannot connect to a's disk server"
expect denied "$uid_b" read "$dir_a/console.log" "b cannot read a's console log"
expect ok "$uid_b" connect "$dir_b/disk0.sock" "b connects to its disk server"

log "both guests still run, undisturbed by the probes"
for name in a b; do
	[ "$(jget "$(vmj $name)" 'j["state"]')" = running ] || fail "$name not running after the probes: $(vmj $name)"
done
log "a's uid owns its dir: what it plants there neither blocks nor serves hvnoded (root)"
as_sh() { on setpriv --reuid="$uid_a" --regid="$uid_a" --clear-groups sh -c "$1"; }
as_sh "cd $dir_a && rm console.log && mkfifo console.log" || fail "mkfifo as a's uid"
set +e
out=$(timeout 10 "$lab" exec n1 -- hvctl vm console-log a 2>&1)
rc=$?
set -e
[ $rc -eq 1 ] && grep "not a plain file" <<<"$out" >/dev/null ||
	fail "console-log of a FIFO: exit $rc ($out)"
timeout 10 "$lab" exec n1 -- hvctl status >/dev/null || fail "hvnoded stuck after the FIFO"
on sh -c 'for c in 1 2; do echo secret >/run/canary$c; chmod 600 /run/canary$c; done'
# only while its VM runs: a stopped VM's dir is root's (below)
as_sh "cd $dir_a && rm -f console.log disk0.log && ln -s /run/canary1 console.log && ln -s /run/canary2 disk0.log" ||
	fail "planting links as a's uid"
on hvctl vm stop a >/dev/null || fail "vm stop a"
is_stopped() { [ "$(jget "$(vmj "$1")" 'j["state"]')" = stopped ]; }
wait_for 60 "a stopped" is_stopped a
canaries() {
	for c in 1 2; do
		m=$(on stat -c '%a %u %s' /run/canary$c)
		[ "$m" = "600 0 7" ] || fail "root's /run/canary$c, linked from a's dir, became '$m' ($1)"
	done
}
canaries "after the stop of a"
[ "$(on stat -c '%a %u' "$dir_a")" = "700 0" ] || fail "a's dir after its stop: $(on stat -c '%a %u' "$dir_a")"
on test -L "$dir_a/console.log" && fail "the link a's uid planted is still in its dir after the stop"
set +e
out=$(on hvctl vm start a 2>&1)
rc=$?
set -e
log "start of a after planted console.log and disk0.log links: exit $rc: $out"
canaries "after the start of a"
log "ok: root's files behind a's links untouched"

log "a stopped VM's dir is root's: the next VM given its uid reads nothing of it"
on hvctl vm stop b >/dev/null || fail "vm stop b"
wait_for 60 "b stopped" is_stopped b
[ "$(on stat -c '%a %u %g' "$dir_b")" = "700 0 0" ] || fail "b's dir after its stop: $(on stat -c '%a %u %g' "$dir_b")"
[ "$(on stat -c '%a %u' "$dir_b/console.log")" = "600 0" ] ||
	fail "b's console.log after its stop: $(on stat -c '%a %u' "$dir_b/console.log")"
for f in qmp.sock disk0.sock; do
	on test -e "$dir_b/$f" && fail "b's $f is left after its stop"
done
on hvctl vm console-log b --lines 50 | grep '^commit seq=' >/dev/null ||
	fail "hvnoded no longer reads the console log of the stopped b"
on hvctl vm create c --vcpus 1 --memory 32M --disk "${luns[2]},bus=ide" \
	--kernel "$guest" --prefer n1 >/dev/null || fail "vm create c"
on hvctl vm start c >/dev/null || fail "vm start c"
wait_for 60 "c writes on its console" bash -c \
	"$lab exec n1 -- hvctl vm console-log c --lines 50 | grep '^commit seq=' >/dev/null"
jc=$(vmj c)
uid_c=$(jget "$jc" 'j["uid"]')
dir_c=$(jget "$jc" 'j["dir"]')
[ "$uid_c" = "$uid_b" ] || fail "c got uid $uid_c, not b's freed $uid_b: the slot was not reused"
log "c runs with b's old uid $uid_c"
expect ok "$uid_c" read "$dir_c/console.log" "c reads its own console log"
expect denied "$uid_c" read "$dir_b/console.log" "c cannot read the console log b left"
expect denied "$uid_c" list "$dir_b" "c cannot list the dir b left"
expect denied "$uid_c" write "$dir_b" "c cannot write into the dir b left"
expect denied "$uid_c" read "$dir_b/disk0.log" "c cannot read b's disk server log"
echo PASS
