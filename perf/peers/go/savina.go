// The Savina actor benchmarks (Imam & Sarkar, AGERE! 2014) in idiomatic Go,
// peers of perf/bench/savina: goroutines for actors, channels for mailboxes,
// the same parameters and the same checks on the results.
//
// Where a goroutine can be sent to by many others and must never block the
// sender (a mailbox), its channel is buffered by how many messages can be
// outstanding at once, which each benchmark's protocol bounds; otherwise
// channels are unbuffered, Go's own rendezvous.

package main

import (
	"math"
	"time"
)

// compute is Savina's fork-join work: sin squared of the angle; a result
// outside [0, 1] fails the check.
func compute(theta float64) bool {
	s := math.Sin(theta)
	r := s * s
	return r >= 0 && r <= 1
}

// splitmix64, the generator krill-savina uses.
type rng uint64

func (s *rng) next() uint64 {
	*s += 0x9e3779b97f4a7c15
	z := uint64(*s)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func checked(s float64, ops float64, ok bool, extras ...kv) result {
	return result{seconds: s, rate: ops / s, extras: append(extras, kv{"ok", ok}), ok: ok}
}

// sv-pingpong: one pair; ping sends a ping carrying its reply channel and
// waits for the pong, N times.
func svPingpong(pings int) result {
	type ping struct{ reply chan<- struct{} }
	toPong := make(chan ping)
	seen := make(chan int)
	go func() {
		n := 0
		for p := range toPong {
			n++
			p.reply <- struct{}{}
		}
		seen <- n
	}()
	pongs := make(chan struct{})
	got := 0
	t0 := time.Now()
	for i := 0; i < pings; i++ {
		toPong <- ping{pongs}
		<-pongs
		got++
	}
	s := secs(time.Since(t0))
	close(toPong)
	n := <-seen
	return checked(s, 2*float64(pings), got == pings && n == pings,
		kv{"messages_total", 2 * pings}, kv{"result", got}, kv{"expected", pings})
}

// sv-count: a producer sends N increments to a counter goroutine, then asks
// for the total. The counter's mailbox is a buffered channel.
func svCount(messages int) result {
	type msg struct {
		inc   bool
		reply chan<- int
	}
	mailbox := make(chan msg, mailboxBuffer)
	go func() {
		count := 0
		for m := range mailbox {
			if m.inc {
				count++
				continue
			}
			m.reply <- count
			return
		}
	}()
	reply := make(chan int)
	t0 := time.Now()
	for i := 0; i < messages; i++ {
		mailbox <- msg{inc: true}
	}
	mailbox <- msg{reply: reply}
	total := <-reply
	s := secs(time.Since(t0))
	return checked(s, float64(messages), total == messages,
		kv{"result", total}, kv{"expected", messages})
}

// sv-fjcreate: N goroutines, each started with its message (the angle),
// does the computation, reports and ends.
func svFjcreate(actors int) result {
	done := make(chan bool, mailboxBuffer)
	t0 := time.Now()
	go func() {
		for i := 0; i < actors; i++ {
			go func(theta float64) { done <- compute(theta) }(float64(i))
		}
	}()
	good := 0
	for i := 0; i < actors; i++ {
		if <-done {
			good++
		}
	}
	s := secs(time.Since(t0))
	return checked(s, float64(actors), good == actors,
		kv{"result", good}, kv{"expected", actors})
}

// sv-fjthroughput: the main goroutine sends M messages to each of A workers,
// round robin; each computes per message and reports after M.
func svFjthroughput(actors, messages int) result {
	done := make(chan int)
	workers := make([]chan float64, actors)
	for i := range workers {
		workers[i] = make(chan float64, mailboxBuffer)
		go func(in <-chan float64) {
			ok := 0
			for j := 0; j < messages; j++ {
				if compute(<-in) {
					ok++
				}
			}
			done <- ok
		}(workers[i])
	}
	total := actors * messages
	t0 := time.Now()
	for i := 0; i < total; i++ {
		workers[i%actors] <- float64(i)
	}
	processed := 0
	for i := 0; i < actors; i++ {
		processed += <-done
	}
	s := secs(time.Since(t0))
	return checked(s, float64(total), processed == total,
		kv{"result", processed}, kv{"expected", total})
}

// sv-threadring: A goroutines in a ring pass a token carrying the hops left;
// the one that gets 0 reports its index, which must be hops mod A.
func svThreadring(actors, hops int) result {
	ring := make([]chan int, actors)
	for i := range ring {
		ring[i] = make(chan int, 1) // the token and, at the end, the stop
	}
	last := make(chan int)
	for i := 0; i < actors; i++ {
		go func(index int, in <-chan int, next chan<- int) {
			for left := range in {
				if left == 0 {
					last <- index
					return
				}
				next <- left - 1
			}
		}(i, ring[i], ring[(i+1)%actors])
	}
	t0 := time.Now()
	ring[0] <- hops
	end := <-last
	s := secs(time.Since(t0))
	for i, c := range ring {
		if i != end {
			close(c)
		}
	}
	return checked(s, float64(hops), end == hops%actors,
		kv{"result", end}, kv{"expected", hops % actors})
}

// sv-chameneos: a mall goroutine pairs meeting requests; the held creature
// takes the complement colour and tells its partner, and both ask again.
// After N meetings every request is answered with stop and each creature
// reports its meetings: they must add up to 2N.
func svChameneos(chameneos, meetings int) result {
	type meet struct {
		from   chan<- cmsg
		colour int
	}
	mall := make(chan meet, chameneos) // one outstanding request per creature
	counts := make(chan int, chameneos)
	complement := func(a, b int) int {
		if a == b {
			return a
		}
		return 3 - a - b
	}
	t0 := time.Now()
	for i := 0; i < chameneos; i++ {
		go func(colour int) {
			in := make(chan cmsg, 1) // one message at a time: meet, change or stop
			n := 0
			for {
				mall <- meet{in, colour}
				m := <-in
				switch {
				case m.stop:
					counts <- n
					return
				case m.partner != nil: // held by the mall: the partner's request
					colour = complement(colour, m.colour)
					m.partner <- cmsg{colour: colour}
				default: // the partner changed us
					colour = m.colour
				}
				n++
			}
		}(i % 3)
	}
	var waiting *meet
	for left, faded, sum := meetings, 0, 0; ; {
		select {
		case m := <-mall:
			switch {
			case left == 0:
				m.from <- cmsg{stop: true}
			case waiting == nil:
				waiting = &m
			default:
				left--
				waiting.from <- cmsg{partner: m.from, colour: m.colour}
				waiting = nil
			}
		case c := <-counts:
			sum += c
			if faded++; faded == chameneos {
				s := secs(time.Since(t0))
				return checked(s, float64(meetings), sum == 2*meetings,
					kv{"result", sum}, kv{"expected", 2 * meetings})
			}
		}
	}
}

// A message to a chameneo: the partner's request (partner set), a colour
// change, or stop.
type cmsg struct {
	partner chan<- cmsg
	colour  int
	stop    bool
}

// sv-big: A workers each send P pings, one at a time, to random others,
// which answer pong; done workers tell the sink, which then stops them all;
// the pings they answered must add up to A*P.
func svBig(actors, pings int) result {
	type worker struct {
		pings chan chan<- struct{} // a ping carries where to send the pong
		stop  chan struct{}
	}
	ws := make([]worker, actors)
	for i := range ws {
		// Each worker has at most one ping outstanding, so at most
		// actors-1 pings can wait for one worker at once.
		ws[i] = worker{make(chan chan<- struct{}, actors), make(chan struct{})}
	}
	done := make(chan struct{}, actors)
	answered := make(chan int, actors)
	start := make(chan struct{})
	for i := range ws {
		go func(index int, me worker) {
			pongs := make(chan struct{}, 1)
			r := rng(index + 1)
			ping := func() {
				k := int(r.next() % uint64(actors-1))
				if k >= index {
					k++
				}
				ws[k].pings <- pongs
			}
			n, left := 0, pings
			<-start
			ping()
			for {
				select {
				case from := <-me.pings:
					n++
					from <- struct{}{}
				case <-pongs:
					if left--; left > 0 {
						ping()
					} else {
						done <- struct{}{}
					}
				case <-me.stop:
					answered <- n
					return
				}
			}
		}(i, ws[i])
	}
	t0 := time.Now()
	close(start)
	for i := 0; i < actors; i++ {
		<-done
	}
	s := secs(time.Since(t0))
	for _, w := range ws {
		close(w.stop)
	}
	sum := 0
	for i := 0; i < actors; i++ {
		sum += <-answered
	}
	total := actors * pings
	return checked(s, 2*float64(total), sum == total,
		kv{"messages_total", 2 * total}, kv{"result", sum}, kv{"expected", total})
}

// Keys of sv-concdict; the map starts with the lower half.
const dictKeys = 1 << 16

// sv-concdict: one goroutine owns a map; W workers each make M requests
// (writes% writes) and wait for each answer. A value always encodes its key
// (value mod dictKeys == key), which every read checks.
func svConcdict(workers, messages, writes int) result {
	type req struct {
		write      bool
		key, value uint64
		reply      chan<- uint64
	}
	const absent = ^uint64(0)
	requests := make(chan req, workers)
	sizeCh := make(chan int)
	m := make(map[uint64]uint64, dictKeys)
	for k := uint64(0); k < dictKeys/2; k++ {
		m[k] = k
	}
	go func() {
		for r := range requests {
			if r.write {
				m[r.key] = r.value
				r.reply <- r.value
			} else if v, ok := m[r.key]; ok {
				r.reply <- v
			} else {
				r.reply <- absent
			}
		}
		sizeCh <- len(m)
	}()
	bad := make(chan int)
	t0 := time.Now()
	for i := 0; i < workers; i++ {
		go func(r rng) {
			reply := make(chan uint64)
			n := 0
			for j := 0; j < messages; j++ {
				key := r.next() % dictKeys
				write := r.next()%100 < uint64(writes)
				value := key + dictKeys*(r.next()>>20)
				requests <- req{write, key, value, reply}
				if v := <-reply; v != absent && v%dictKeys != key {
					n++
				}
			}
			bad <- n
		}(rng(i + 1))
	}
	nbad := 0
	for i := 0; i < workers; i++ {
		nbad += <-bad
	}
	s := secs(time.Since(t0))
	close(requests)
	size := <-sizeCh
	total := workers * messages
	ok := nbad == 0 && size >= dictKeys/2 && size <= dictKeys
	return checked(s, float64(total), ok,
		kv{"keys", dictKeys}, kv{"map_size", size}, kv{"bad_reads", nbad})
}

// sv-fib: a goroutine computing fib(n) answers 1 for n <= 2, else starts two
// for n-1 and n-2 and answers the sum: 2 fib(n) - 1 goroutines.
func fib(n int, out chan<- int) {
	if n <= 2 {
		out <- 1
		return
	}
	c := make(chan int, 2)
	go fib(n-1, c)
	go fib(n-2, c)
	out <- <-c + <-c
}

func svFib(n int) result {
	a, b := 1, 1
	for i := 3; i <= n; i++ {
		a, b = b, a+b
	}
	out := make(chan int)
	t0 := time.Now()
	go fib(n, out)
	got := <-out
	s := secs(time.Since(t0))
	return checked(s, float64(2*b-1), got == b,
		kv{"processes", 2*b - 1}, kv{"result", got}, kv{"expected", b})
}

// sv-bank: a teller asks a random account to transfer a random amount to
// another; the source debits itself, credits the destination and waits for
// its acknowledgement before answering the teller, taking credits meanwhile
// but not new transfers (a nil channel in the select). At most window
// transfers are outstanding. Total money must not change.
func svBank(accounts, transactions, window int) result {
	const startBalance = 1000000
	type transfer struct {
		dest   int
		amount int
	}
	type credit struct {
		amount int
		ack    chan<- struct{}
	}
	type account struct {
		transfers chan transfer
		credits   chan credit
		stop      chan struct{}
	}
	// Every transaction has one message in flight at a time, so with at
	// most window outstanding no send below ever blocks.
	accts := make([]account, accounts)
	for i := range accts {
		accts[i] = account{make(chan transfer, window), make(chan credit, window),
			make(chan struct{})}
	}
	replies := make(chan struct{}, window)
	balances := make(chan int, accounts)
	for i := range accts {
		go func(me account) {
			balance := startBalance
			acks := make(chan struct{}, 1)
			transfers := me.transfers
			for {
				select {
				case t := <-transfers:
					balance -= t.amount
					accts[t.dest].credits <- credit{t.amount, acks}
					transfers = nil // wait for the ack
				case c := <-me.credits:
					balance += c.amount
					c.ack <- struct{}{}
				case <-acks:
					replies <- struct{}{}
					transfers = me.transfers
				case <-me.stop:
					balances <- balance
					return
				}
			}
		}(accts[i])
	}
	r := rng(1)
	send := func() {
		src := int(r.next() % uint64(accounts))
		dst := int(r.next() % uint64(accounts-1))
		if dst >= src {
			dst++
		}
		accts[src].transfers <- transfer{dst, int(r.next()%1000) + 1}
	}
	t0 := time.Now()
	sent := 0
	for ; sent < window && sent < transactions; sent++ {
		send()
	}
	for completed := 0; completed < transactions; completed++ {
		<-replies
		if sent < transactions {
			send()
			sent++
		}
	}
	s := secs(time.Since(t0))
	for _, a := range accts {
		close(a.stop)
	}
	total := 0
	for range accts {
		total += <-balances
	}
	expected := accounts * startBalance
	return checked(s, float64(transactions), total == expected,
		kv{"result", total}, kv{"expected", expected})
}
