#!/usr/bin/env bash
# Integration test of krilltop against a live krill-bench: the list, the live view driven
# through a private tmux server (screen content, refresh, keys, the watched program's exit),
# --json, --clean, --name and the error messages.
# usage: test_krilltop.sh KRILLTOP KRILL_BENCH KRILLTOP_NAMES [DIST_PEER DIST_SCRIPTS]
# (DIST_PEER "none" or absent: dist/ is not built, the node view is not tested.)
set -u
kt=$1
bench=$2
named=$3
dpeer=${4:-none}
dscripts=${5:-}

for tool in tmux jq; do
	if ! command -v "$tool" >/dev/null; then
		echo "SKIP: $tool is not installed"
		exit 77 # meson's skip code
	fi
done

tmp=$(mktemp -d)
sock=krilltop-test-$$ # our own tmux server: nothing of the user's sessions is touched
bpid=
dead=
fpid=
npid=
kpid=
epid=
cpid=
tm() { tmux -L "$sock" -f /dev/null "$@"; }
cleanup() {
	# A program killed by a signal does not free its runtime: remove what it leaves.
	if [ -n "$bpid" ]; then
		kill "$bpid" 2>/dev/null
		wait "$bpid" 2>/dev/null
		rm -f /dev/shm/krill."$bpid".*
	fi
	[ -n "$dead" ] && rm -f /dev/shm/krill."$dead".*
	if [ -n "$fpid" ]; then
		kill "$fpid" 2>/dev/null
		wait "$fpid" 2>/dev/null
		rm -f /dev/shm/krill."$fpid".*
	fi
	if [ -n "$npid" ]; then
		kill "$npid" 2>/dev/null
		wait "$npid" 2>/dev/null
		rm -f /dev/shm/krill."$npid".*
	fi
	[ -n "$cpid" ] && kill "$cpid" 2>/dev/null && wait "$cpid" 2>/dev/null
	if [ -n "$kpid" ]; then
		kill "$kpid" 2>/dev/null
		wait "$kpid" 2>/dev/null
		rm -f /dev/shm/krill."$kpid".*
	fi
	[ -n "$epid" ] && kill "$epid" 2>/dev/null && wait "$epid" 2>/dev/null
	tm kill-server 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*"
	exit 1
}
ok() { echo "ok: $*"; }

# wait_for SECONDS CMD...: poll until CMD succeeds.
wait_for() {
	local n=$(($1 * 10))
	shift
	while ! "$@" 2>/dev/null; do
		n=$((n - 1))
		[ "$n" -gt 0 ] || return 1
		sleep 0.1
	done
}
has_segment() { compgen -G "/dev/shm/krill.$1.*" >/dev/null; }
no_session() { ! tm has-session -t "$1"; }

"$bench" idle --procs 100000 --seconds 20 >/dev/null &
bpid=$!
wait_for 10 has_segment "$bpid" || fail "krill-bench $bpid published no segment"
started=$(date +%s)

# The list.
"$kt" >"$tmp/list" || fail "krilltop (list) failed"
grep -Eq "^ *$bpid +0 +krill-bench +[0-9]+ " "$tmp/list" ||
	fail "list does not show $bpid: $(cat "$tmp/list")"
ok "list shows krill-bench $bpid"

# The live view.
tm new-session -d -s kt -x 120 -y 40 "$kt $bpid; echo \$? >$tmp/status1" ||
	fail "tmux new-session"
sleep 1.5
tm capture-pane -p -t kt >"$tmp/screen1"
sleep 1.5
tm capture-pane -p -t kt >"$tmp/screen2"
grep -q "pid $bpid (krill-bench)" "$tmp/screen2" || fail "no pid on screen: $(cat "$tmp/screen2")"
grep -Eq '^ +0 +[-0-9]+ +[0-9]+ +[0-9]+ +\[[|.]+\] +[0-9.]+%' "$tmp/screen2" ||
	fail "no bar for scheduler 0: $(cat "$tmp/screen2")"
grep -q "alive " "$tmp/screen2" || fail "no process totals on screen"
cmp -s "$tmp/screen1" "$tmp/screen2" && fail "the screen did not change in 1.5 s"
up1=$(grep -o ' up [0-9a-z]*' "$tmp/screen1")
up2=$(grep -o ' up [0-9a-z]*' "$tmp/screen2")
[ -n "$up1" ] && [ "$up1" != "$up2" ] || fail "uptime did not move: '$up1' then '$up2'"
ok "live view shows pid $bpid and a scheduler bar, and refreshes ($up1 ->$up2)"
# 100,000 processes spawned from the main thread: four chunks of the process table (8 MiB),
# which the memory line used to leave out (allocated 0 B).
grep -Eq '^memory +held [0-9.]+ [KMG]iB: processes [1-9][0-9.]* MiB ' "$tmp/screen2" ||
	fail "no processes memory on the memory line: $(grep memory "$tmp/screen2")"
grep -q "HANDLED/S" "$tmp/screen2" || fail "no top-processes section: $(cat "$tmp/screen2")"
ok "memory line shows what the processes hold; top-processes section present"
echo "---- screen ----"
sed -e '/^$/N;/^\n$/D' "$tmp/screen2"
echo "----------------"

sorted_by_util() { tm capture-pane -p -t kt | grep -q "sort (utilization)"; }
tm send-keys -t kt s
wait_for 3 sorted_by_util ||
	fail "s did not change the sort order"
tm send-keys -t kt q
wait_for 3 no_session kt || fail "q did not end krilltop"
[ "$(cat "$tmp/status1" 2>/dev/null)" = 0 ] || fail "krilltop exited $(cat "$tmp/status1")"
ok "s sorts, q quits with status 0"

# One snapshot.
"$kt" "$bpid" --json >"$tmp/json" || fail "--json failed"
jq -e ".pid == $bpid and .nsched >= 1 and (.schedulers | length) == .nsched and
	.rt.alive >= 0 and .rates != null" "$tmp/json" >/dev/null ||
	fail "bad JSON: $(cat "$tmp/json")"
jq -e '.version == 4 and .node == null and .rt.mem_procs >= 8388608 and
	(.schedulers[0] | has("stolen") and has("given") and has("stayed") and has("woke") and
		has("lone_fails")) and
	(.totals | has("stolen") and has("given") and has("stayed") and has("woke") and
		has("lone_fails")) and
	.rt.mem_held == .rt.mem_procs + .rt.mem_msgs + .rt.mem_timers + .rt.mem_other and
	(.schedulers[0] | has("mem_held") and has("mem_msgs")) and (.top | type) == "array"' \
	"$tmp/json" >/dev/null || fail "JSON lacks the memory breakdown or top: $(cat "$tmp/json")"
ok "--json parses, nsched $(jq .nsched "$tmp/json"), processes hold $(jq .rt.mem_procs "$tmp/json") bytes"
"$kt" "$bpid" --once --sample 100 >"$tmp/once" || fail "--once failed"
grep -q $'\e' "$tmp/once" && fail "--once printed escape codes"
grep -q "pid $bpid" "$tmp/once" || fail "--once: $(cat "$tmp/once")"
grep -Eq "^sched +steals [0-9]+ .*stolen [0-9]+ +given [0-9]+ +stayed [0-9]+ .*woke [0-9]+ +lone_fails [0-9]+" "$tmp/once" ||
	fail "--once lacks the scheduler counters: $(cat "$tmp/once")"
grep -q "^node " "$tmp/once" && fail "--once shows a node for a runtime that is none"
ok "--once prints plain text, with steals, stolen, given, stayed, woke and lone_fails"

# The busiest processes: fanin's consumer (its mailbox bounded by --limit so the machine's
# memory is not). It may keep up with its producers since it runs on through the messages it
# took (run.c), so its mailbox may read 0 here; test_stats checks a flooded mailbox's count.
"$bench" fanin --producers 2 --messages 1000000000 --limit 1000 --schedulers 2 >/dev/null &
fpid=$!
has_top() {
	"$kt" "$fpid" --top >"$tmp/top" && grep -Eq '^ <[0-9]+\.[0-9]+> +- +[0-9]+ +[0-9.]+k?\+? ' "$tmp/top"
}
wait_for 10 has_top || fail "--top listed no process of fanin $fpid: $(cat "$tmp/top")"
"$kt" "$fpid" --json >"$tmp/fjson" || fail "--json of fanin failed"
jq -e '(.top | length) >= 1 and .top[0].handled > 0 and .top[0].mailbox >= 0 and
	.top[0].memory >= 64' "$tmp/fjson" >/dev/null || fail "fanin's JSON top: $(jq -c .top "$tmp/fjson")"
out=$("$kt" "$fpid" --name nosuch 2>&1)
rc=$?
[ "$rc" = 1 ] && [[ "$out" == *"no process named nosuch"* ]] || fail "--name nosuch: status $rc, '$out'"
kill "$fpid"
wait "$fpid" 2>/dev/null
rm -f /dev/shm/krill."$fpid".*
fpid=
ok "--top lists fanin's busiest processes: $(sed -n 2p "$tmp/top" | tr -s ' ')"

# --name finds any registered process: an idle one (never among the busiest) by the names
# table, a busy one with its figures; an unknown name is one line and status 1.
"$named" 0 30 >/dev/null &
npid=$!
in_names() {
	"$kt" "$npid" --json >"$tmp/njson" &&
		jq -e '.names.table | map(.name) | index("idle-one") != null' "$tmp/njson" >/dev/null
}
wait_for 10 in_names || fail "idle-one never appeared in the names table: $(cat "$tmp/njson")"
jq -e '(.top | map(.name) | index("idle-one")) == null and .names.full == false and
	.names.n == .names.total and .names.total == 2' "$tmp/njson" >/dev/null ||
	fail "names JSON: $(jq -c '.top, .names' "$tmp/njson")"
"$kt" "$npid" --name idle-one >"$tmp/name" || fail "--name idle-one: status $?: $(cat "$tmp/name")"
grep -Eq '^ <[0-9]+\.[0-9]+> +idle-one +- +- +- +-$' "$tmp/name" ||
	fail "--name idle-one printed: $(cat "$tmp/name")"
has_busy() {
	"$kt" "$npid" --name busy-sink >"$tmp/busy" &&
		grep -Eq '^ <[0-9]+\.[0-9]+> +busy-sink +[0-9]+ +[0-9.]+k?\+? +[0-9.]+[kM]? ' "$tmp/busy"
}
wait_for 10 has_busy || fail "--name busy-sink: $(cat "$tmp/busy")"
out=$("$kt" "$npid" --name nosuch 2>&1)
rc=$?
[ "$rc" = 1 ] && [ "$out" = "krilltop: no process named nosuch in pid $npid" ] ||
	fail "--name nosuch: status $rc, '$out'"
kill "$npid"
wait "$npid"
has_segment "$npid" && fail "krilltop-names left its segment"
npid=
ok "--name: idle-one $(awk 'NR == 2 {print $1}' "$tmp/name") (not among the busiest), busy-sink with its figures, nosuch an error"

# More names than the table holds: it says so, and --name of one left out says it was full.
"$named" 1100 30 >/dev/null &
npid=$!
names_full() {
	"$kt" "$npid" --json >"$tmp/njson" && jq -e '.names.total == 1102' "$tmp/njson" >/dev/null
}
wait_for 10 names_full || fail "the names table never counted 1102: $(jq -c '.names | del(.table)' "$tmp/njson")"
jq -e '.names.n == 1024 and .names.full == true and (.names.table | length) == 1024' \
	"$tmp/njson" >/dev/null || fail "full names table: $(jq -c '.names | del(.table)' "$tmp/njson")"
left=$(jq -r '[.names.table[].name] as $t | [range(1100) | "extra-\(.)"] - $t | .[0]' "$tmp/njson")
out=$("$kt" "$npid" --name "$left" 2>&1)
rc=$?
[ "$rc" = 1 ] && [[ "$out" == *"which was full (1024 of 1102 names published)" ]] ||
	fail "--name $left: status $rc, '$out'"
kill "$npid"
wait "$npid"
npid=
ok "a full names table: 1024 of 1102 published; --name $left says the table was full"

# A krill node with a connection to an erl node: its name, the peer, the counters.
if [ "$dpeer" != none ] && command -v escript >/dev/null && command -v epmd >/dev/null; then
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	export ERL_EPMD_PORT=$port KRILL_COOKIE=krilltoptest
	epmd -port "$port" &
	epid=$!
	wait_for 5 epmd -port "$port" -names >/dev/null || fail "epmd on $port did not start"
	"$dpeer" ktnode@127.0.0.1 60 >"$tmp/peer.out" &
	kpid=$!
	wait_for 10 grep -q ready "$tmp/peer.out" || fail "dist-peer did not start"
	ERL_FLAGS="-name ktchat@127.0.0.1 -setcookie krilltoptest" \
		escript "$dscripts/chatter.escript" ktnode@127.0.0.1 >"$tmp/chat.out" &
	cpid=$!
	wait_for 30 grep -q ready "$tmp/chat.out" || fail "the erl node got no answers"
	# Counters are published after each event; the figures are the connection's.
	node_seen() {
		"$kt" "$kpid" --once --sample 0 >"$tmp/nonce" &&
			grep -Eq "^node +ktnode@127.0.0.1 +creation [0-9]+ +port [0-9]+ +connections 1" \
				"$tmp/nonce" &&
			grep -Eq "^  ktchat@127.0.0.1 +msgs in 1[0-9] out [1-9][0-9]* +bytes in [1-9][0-9.]* [KMG]?i?B out [1-9]" \
				"$tmp/nonce"
	}
	wait_for 5 node_seen || fail "--once does not show the node and its connection: $(cat "$tmp/nonce")"
	"$kt" "$kpid" --json >"$tmp/kjson" || fail "--json of the node failed"
	jq -e '.node.name == "ktnode@127.0.0.1" and .node.creation > 0 and
		(.node.connections | length) == 1 and .node.connections[0].peer == "ktchat@127.0.0.1" and
		.node.connections[0].msgs_in >= 10 and .node.connections[0].msgs_out >= 10 and
		.node.connections[0].bytes_in > 0 and .node.connections[0].bytes_out > 0' \
		"$tmp/kjson" >/dev/null || fail "--json node: $(jq -c .node "$tmp/kjson")"
	kill "$cpid"
	wait "$cpid" 2>/dev/null
	cpid=
	conn_gone() { "$kt" "$kpid" --json | jq -e '(.node.connections | length) == 0' >/dev/null; }
	wait_for 10 conn_gone || fail "the connection stayed listed after the erl node died"
	ok "node ktnode@127.0.0.1 shows its connection to ktchat@127.0.0.1 ($(grep '^  ktchat' "$tmp/nonce" | tr -s ' '))"
	kill "$kpid"
	wait "$kpid"
	kpid=
	kill "$epid"
	wait "$epid" 2>/dev/null
	epid=
else
	echo "skip: the node view (no dist/ build, escript or epmd)"
fi

# A segment of another layout version is refused with a clear message.
sleep 30 &
fake=$!
{
	printf 'STKRILL1\x09\x00\x00\x00'
	head -c 4084 /dev/zero
} >/dev/shm/krill."$fake".0
out=$("$kt" "$fake" --once 2>&1)
rc=$?
rm -f /dev/shm/krill."$fake".0
kill "$fake"
wait "$fake" 2>/dev/null
[ "$rc" = 1 ] && [[ "$out" == *"has layout version 9; this krilltop reads versions 2 to 4"* ]] ||
	fail "a version 9 segment: status $rc, '$out'"
ok "a version 9 segment: '$out'"

# Errors.
nopid=999999
while kill -0 "$nopid" 2>/dev/null; do nopid=$((nopid + 1)); done
out=$("$kt" "$nopid" 2>&1)
rc=$?
[ "$rc" = 1 ] && [[ "$out" == *"no such process: $nopid"* ]] ||
	fail "krilltop $nopid: status $rc, '$out'"
out=$("$kt" --json $$ 2>&1)
rc=$?
[ "$rc" = 1 ] && [[ "$out" == *"process $$ is not a krill program"* ]] ||
	fail "krilltop --json $$: status $rc, '$out'"
out=$("$kt" --bogus 2>&1)
rc=$?
[ "$rc" = 2 ] && [[ "$out" == *"unknown option"* ]] || fail "--bogus: status $rc, '$out'"
ok "errors: no such process, not a krill program, unknown option"

# A program killed outright leaves its segment: listed as stale, removed by --clean.
"$bench" idle --procs 10 --seconds 30 >/dev/null &
dead=$!
wait_for 10 has_segment "$dead" || fail "krill-bench $dead published no segment"
exec 3>&2 2>/dev/null # not bash's "Killed" note in the log
kill -9 "$dead"
wait "$dead"
exec 2>&3 3>&-
"$kt" | grep -Eq "^ *$dead +0 .*stale" || fail "no stale line for $dead: $("$kt")"
"$kt" --clean >"$tmp/clean" || fail "--clean failed: $(cat "$tmp/clean")"
grep -Eq "removed [1-9][0-9]* stale segment" "$tmp/clean" || fail "--clean: $(cat "$tmp/clean")"
has_segment "$dead" && fail "--clean left /dev/shm/krill.$dead.*"
ok "stale segment listed, and removed by --clean"

# Watch the program to its end: the view says so and quits with status 0.
tm new-session -d -s kt2 -x 100 -y 30 "$kt $bpid --interval 200; echo \$? >$tmp/status2" ||
	fail "tmux new-session"
# Its last frame says so for a second: catch it on the way out.
seen=
# It ends 20 s after it started; the checks above may have taken longer than that on a loaded
# machine (the node's erl peer alone takes seconds), so 20 s from now at the least.
deadline=$((started + 40))
[ "$deadline" -ge "$(($(date +%s) + 20))" ] || deadline=$(($(date +%s) + 20))
while tm has-session -t kt2 2>/dev/null; do
	[ "$(date +%s)" -lt "$deadline" ] || fail "krilltop did not quit when $bpid exited"
	# The runtime's segment goes a moment before the process: either ending is right.
	tm capture-pane -p -t kt2 2>/dev/null |
		grep -Eq "process $bpid \(krill-bench\)(:? runtime [0-9]+ ended| exited)" &&
		seen=1
	sleep 0.1
done
[ -n "$seen" ] || fail "the live view never said the process exited"
[ "$(cat "$tmp/status2" 2>/dev/null)" = 0 ] || fail "krilltop exited $(cat "$tmp/status2")"
ok "the live view said the process exited and quit with status 0"
wait "$bpid"
gone=$bpid
bpid=
"$kt" >"$tmp/list2" || fail "krilltop (list) failed"
grep -Eq "^ *$gone " "$tmp/list2" && fail "list still shows it: $(cat "$tmp/list2")"
ok "list no longer shows it"
exit 0
