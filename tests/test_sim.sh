#!/usr/bin/env bash
# krill-sim (perf/bench/krill-sim.c): its runs replay, a message that crosses
# schedulers costs what --cross-ns says, and the runtime's policy ("krill":
# steal only backlog that has waited) keeps a token ring on one scheduler
# where the policy before it ("eager") takes the token away and pays for
# every process it then moves; task loads at 8 x 32 cores do not pay for the
# wait, a hub's thieves wait near rather than cross, and a busy thief
# that does not pay gives its processes back (compaction), and a hub woken
# by a client elsewhere stays where it ran, its clients left to it, and
# its home's longer wait pays beside work of its own. Small programs
# (--work 100..1000, task loads at the default; a few longer runs at 8 x 32):
# seconds.
# usage: test_sim.sh KRILL-SIM
set -u
sim=$1
fail=0

# The value of "key" in a JSON line.
field() { sed -n "s/.*\"$1\":\([^,}]*\).*/\1/p" | head -1; }
check() { # description, condition's exit status
	if [ "$2" -eq 0 ]; then
		echo "ok   $1"
	else
		echo "FAIL $1"
		fail=1
	fi
}
rate() { # policy, cross-ns, cores: the ring's rate (M messages/s)
	"$sim" --workload ring --nodes 1 --cores "$3" --work 400 --policy "$1" --cross-ns "$2" |
		field rate_mmsg_s
}

a=$("$sim" --workload hub --nodes 2 --cores 4 --work 200)
b=$("$sim" --workload hub --nodes 2 --cores 4 --work 200)
[ -n "$a" ] && [ "$a" = "$b" ]
check "a run replays: same seed, same lines" $?

one=$(rate krill 450 1)
k=$(rate krill 450 2)
e0=$(rate eager 0 2)
e=$(rate eager 450 2)
echo "ring rates: 1 core $one; 2 cores: krill $k, eager $e (cross 450 ns), $e0 (cross 0)"
awk -v a="$e" -v b="$e0" 'BEGIN { exit !(a < b) }'
check "a moved process pays --cross-ns: eager's ring is slower at 450 ns than at 0" $?
awk -v a="$k" -v b="$one" 'BEGIN { exit !(a == b && a > 0) }'
check "the runtime's policy leaves the ring's young backlog alone: 2 cores as fast as 1" $?
awk -v a="$e" -v b="$one" 'BEGIN { exit !(a < b) }'
check "the policy before it takes the token away: 2 cores slower than 1" $?

s=$("$sim" --scaling --workload ring --policy krill --work 100)
echo "$s" | grep -q '"scaling":"ring","policy":"krill".*"never_backwards":true'
check "--scaling judges rate(256) >= rate(32) >= rate(1): the ring never goes backwards" $?
[ "$(echo "$s" | grep -c '"cores":')" = 4 ]
check "--scaling runs 1, 2, 32 and 256 cores" $?

# Task loads at 256 cores (8 x 32): a stolen batch of tasks, each running
# once and exiting, is a steal that paid (bal_paid), so the wait does not
# climb. Judged by messages alone (before), krill took 1.8 x eager's time
# on skewed, 3.9 x on bursty, 3.1 x on fork-join.
xideal() { # workload, policy
	"$sim" --workload "$1" --policy "$2" | field makespan_over_ideal
}
for w in skewed:1.5 bursty:1.5 forkjoin:3; do
	k=$(xideal "${w%%:*}" krill)
	e=$(xideal "${w%%:*}" eager)
	echo "${w%%:*} at 8 x 32: krill $k x ideal, eager $e"
	awk -v k="$k" -v e="$e" -v r="${w#*:}" 'BEGIN { exit !(k > 0 && k <= r * e) }'
	check "${w%%:*}: a batch of tasks pays, krill within ${w#*:} x eager's time" $?
done

# A hub on 4 nodes x 8 cores: a thief whose steals do not pay waits for
# young backlog on its own node rather than crossing (kri_bal_choose).
# Before, 22 % of message bytes crossed nodes (17 x the ideal time).
x=$("$sim" --workload hub --policy krill --nodes 4 --cores 8 --work 400 |
	field cross_node_msg_bytes_frac)
echo "hub at 4 x 8: cross-node message bytes $x"
awk -v x="$x" 'BEGIN { exit !(x != "" && x < 0.10) }'
check "hub: young backlog near means wait, not cross (< 10 % of bytes cross nodes)" $?

# Compaction (balance.h's bal_window, bal_giveback_wait): a busy thief
# judges its steal every 2 ms of virtual time and, when the runtime went no
# faster for it, gives its processes back and sleeps. big at 2 cores
# (2,048 actors pinging random peers, 250,000 messages): without the
# give-back 0.62 of 1 core's rate (12.2 against 19.8 M/s) whatever the
# seed; with it 13.2-16.5 M/s, by seed (two outcomes, 13.2-13.3 or
# 15.3-16.5, before the wake placement as after), so each of seeds 1-3 is
# judged against its own run without the give-back.
b1=$("$sim" --workload big --policy krill --nodes 1 --cores 1 --work 1000 | field rate_mmsg_s)
for seed in 1 2 3; do
	b2l=$("$sim" --workload big --policy krill --nodes 1 --cores 2 --work 1000 --seed $seed)
	b2=$(echo "$b2l" | field rate_mmsg_s)
	g=$(echo "$b2l" | field givebacks)
	l=$("$sim" --workload big --policy krill --nodes 1 --cores 2 --work 1000 --seed $seed \
		--window-ns 0)
	n=$(echo "$l" | field rate_mmsg_s)
	echo "big, seed $seed: 1 core $b1, 2 cores $b2 M/s with $g give-backs, $n without (--window-ns 0)"
	awk -v a="$b2" -v n="$n" -v g="$g" 'BEGIN { exit !(n > 0 && a >= 1.05 * n && g > 0) }'
	check "big, seed $seed: a thief that does not speed the runtime up gives back (>= 1.05 x without)" $?
	awk -v a="$n" -v b="$b1" -v g="$(echo "$l" | field givebacks)" \
		'BEGIN { exit !(g == 0 && a > 0 && a < 0.75 * b) }'
	check "--window-ns 0: no give-back, and big at 2 cores falls below 0.75 x 1 core" $?
done
# Issue #19's two faults of the give-back, found here. (1) Thieves whose
# steals pay never sleep timed, so solo stays unknown, and a window with solo
# unknown gave back at once, also batches of tasks: at 2 x 16 cores and
# --work 200000 (5 ms a core) skewed took 1.116 x ideal and bursty 1.132
# (eager 1.025, 1.013). A thief whose processes have exited keeps them
# (bal_tasks): 1.028 and 1.019. Since a moved task pays half a round trip
# (issue #19, fjcreate) and exits pay only for tasks that ran a move's time,
# 1.332 and 1.403 against eager's 1.285 and 1.404.
for w in skewed bursty; do
	k=$("$sim" --workload $w --policy krill --nodes 2 --cores 16 --work 200000 |
		field makespan_over_ideal)
	e=$("$sim" --workload $w --policy eager --nodes 2 --cores 16 --work 200000 |
		field makespan_over_ideal)
	echo "$w at 2 x 16, --work 200000: krill $k x ideal, eager $e"
	awk -v k="$k" -v e="$e" 'BEGIN { exit !(k > 0 && k <= 1.05 * e) }'
	check "$w, long tasks: no give-back of tasks that exited (krill within 1.05 x eager's time)" $?
done
# (2) A give-back not judged leaves the wait at zero, and the thief stole
# its gift straight back before its sleep: hub at 2 cores 7.2 M/s with 28
# give-backs (1 core: 26.7). A compacting thief does not steal
# (bal_may_steal): 16.8 M/s, one give-back.
h1=$("$sim" --workload hub --policy krill --nodes 1 --cores 1 | field rate_mmsg_s)
h2l=$("$sim" --workload hub --policy krill --nodes 1 --cores 2)
h2=$(echo "$h2l" | field rate_mmsg_s)
echo "hub: 1 core $h1, 2 cores $h2 M/s, $(echo "$h2l" | field givebacks) give-backs"
awk -v a="$h2" -v b="$h1" 'BEGIN { exit !(b > 0 && a >= 0.5 * b) }'
check "hub: a thief that gave back sleeps before it steals again (2 cores >= 0.5 x 1 core)" $?
# (3) A give-back to a victim that is parked was refused for good: two
# thieves that each took half of one victim's queue of a hub's clients, on
# two nodes, kept them while their victim slept, every window judged not
# paying, and nobody else took the backlog (it never waits): the hub went
# back and forth between the nodes to the end. At 8 x 32, --work 20000, seed
# 1: 15.0 x ideal, 26 % of message bytes across nodes. Made at the next
# window that does not pay either, waking the victim (bal_give_parked):
# 4.13 x, 1.6 %.
l=$("$sim" --workload hub --policy krill --work 20000 --seed 1)
r=$(echo "$l" | field makespan_over_ideal)
x=$(echo "$l" | field cross_node_msg_bytes_frac)
echo "hub at 8 x 32, --work 20000: $r x ideal, cross-node message bytes $x"
awk -v r="$r" -v x="$x" 'BEGIN { exit !(r > 0 && r <= 6 && x < 0.1) }'
check "hub at 8 x 32: thieves refused a give-back make it a window later (<= 6 x ideal, < 10 % across nodes)" $?

# Issue #19 item 4 (h19s): fanin (1,000 producers, one consumer) never goes
# backwards at 8 x 32 cores, seeds 1-3. Before: 256 cores below 32 on seeds
# 1 and 3 (33.9 against 35.4 M/s): a thief of another node took half of
# the producers before node 0's idle schedulers, and every producer run
# there made the consumer pay a round trip across nodes (87 % of the
# message bytes); and the consumer, queued again behind nothing after each
# batch, was taken by a thief some 3,900 times a run. With the sink rules
# and the far wait (balance.h): 38.7 M/s at 32 and 256, no byte across.
for seed in 1 2 3; do
	l=$("$sim" --scaling --workload fanin --policy krill --seed $seed | grep '"scaling"')
	echo "fanin, seed $seed: $l"
	echo "$l" | grep -q '"never_backwards":true'
	check "fanin, seed $seed: rate at 256 cores >= at 32 >= at 1 (never_backwards)" $?
done

# Wake placement (balance.h's bal_stays): a hub woken by a client on another
# scheduler stays where it ran, and its clients come to it; and thieves give
# the backlog of a scheduler where a hub stayed lately the longest wait
# (bal_marked_wait). Pulled to the client's scheduler (before), the hub dragged
# its clients after it: seeds 1-2 made 16.8 and 24.5 M/s at 2 cores, 21.0
# and 17.4 at 32, 12.2 and 13.5 at 256 (1 core: 26.7). Staying, 26.2-26.4,
# 23.9-24.0 and 16.4-16.9; with the wait, 26.1, 26.0 and 25.7-25.9: within
# 0.95, 0.95 and 0.9 of 1 core.
h1=$("$sim" --workload hub --policy krill --nodes 1 --cores 1 | field rate_mmsg_s)
for seed in 1 2; do
	h2=$("$sim" --workload hub --policy krill --nodes 1 --cores 2 --seed $seed | field rate_mmsg_s)
	h32=$("$sim" --workload hub --policy krill --nodes 1 --cores 32 --seed $seed |
		field rate_mmsg_s)
	h256=$("$sim" --workload hub --policy krill --seed $seed | field rate_mmsg_s)
	echo "hub, seed $seed: 1 core $h1, 2 cores $h2, 32 cores $h32, 256 cores $h256 M/s"
	awk -v a="$h2" -v b="$h32" -v c="$h256" -v o="$h1" \
		'BEGIN { exit !(o > 0 && a >= 0.95 * o && b >= 0.95 * o && c >= 0.9 * o) }'
	check "hub, seed $seed: it stays with its clients (2 and 32 cores >= 0.95, 256 >= 0.9 x 1 core)" $?
done

# The home wait's cost to a mixed program (hubmix: the broker also spawns 64
# tasks every 500 requests where it runs; tasks that thieves should take,
# beside clients they should leave). M/s with the wait / with --home-wait 0.
# At 2 cores, seeds 1-3: with the longest wait whatever the thieves 9.1,
# 10.5, 10.4 / 11.7, 11.7, 11.6 (the tasks waited up to 1.28 ms for the one
# thief); a wait that grows with the thieves there are (bal_mark_longest):
# 11.7, 11.4, 11.6. At 32 and 256 cores (--work 1000, seeds 1-2) the wait
# pays: 17.1-17.9 / 13.5-13.9 and 17.1-18.3 / 9.6-9.9.
m1=$("$sim" --workload hubmix --policy krill --nodes 1 --cores 1 | field rate_mmsg_s)
for seed in 1 2 3; do
	w=$("$sim" --workload hubmix --policy krill --nodes 1 --cores 2 --seed $seed | field rate_mmsg_s)
	n=$("$sim" --workload hubmix --policy krill --nodes 1 --cores 2 --seed $seed --home-wait 0 |
		field rate_mmsg_s)
	echo "hubmix, seed $seed: 1 core $m1; 2 cores $w with the home wait, $n without"
	awk -v o="$m1" -v a="$w" -v n="$n" 'BEGIN { exit !(o > 0 && a >= 1.8 * o && a >= 0.95 * n) }'
	check "hubmix, seed $seed: at 2 cores the home wait costs the tasks nothing (>= 0.95 x without)" $?
done
for seed in 1 2; do
	for shape in "1 32" "8 32"; do
		set -- $shape
		w=$("$sim" --workload hubmix --policy krill --nodes "$1" --cores "$2" --work 1000 \
			--seed $seed | field rate_mmsg_s)
		n=$("$sim" --workload hubmix --policy krill --nodes "$1" --cores "$2" --work 1000 \
			--seed $seed --home-wait 0 | field rate_mmsg_s)
		eval "w$1=\$w n$1=\$n"
	done
	echo "hubmix, seed $seed, --work 1000: with the home wait / without: 32 cores $w1 / $n1," \
		"256 cores $w8 / $n8 M/s"
	awk -v b="$w1" -v nb="$n1" -v c="$w8" -v nc="$n8" \
		'BEGIN { exit !(b >= 1.15 * nb && c >= 1.5 * nc && nc > 0) }'
	check "hubmix, seed $seed: at 32 and 256 cores the home wait pays (>= 1.15 and 1.5 x without)" $?
done

"$sim" --workload nosuch >/dev/null 2>&1
[ $? = 2 ]
check "an unknown workload is refused" $?
exit $fail
