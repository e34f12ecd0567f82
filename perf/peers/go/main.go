// Command krillbench is the krill benchmark suite written idiomatically in
// Go, as a peer to compare krill against.
//
// One goroutine stands for one krill process and channels stand for
// mailboxes. Same benchmarks, same options and the same JSON lines as
// perf/bench/krill-bench, with "impl":"go". GOMAXPROCS is set from --schedulers.
//
//	krillbench spawn    --procs N                  (default 1000000)
//	krillbench ring     --procs N --laps M         (default 10000 x 1000)
//	krillbench skynet   --leaves N --fanout F      (default 1000000, 10)
//	krillbench pingpong --pairs P --rounds K       (default 1000 x 10000)
//	krillbench fanin    --producers P --messages K (default 2 x 5000000)
//	common:             --schedulers N             (default: all CPUs)
//
// and the Savina set (savina.go), sv-pingpong ... sv-bank, with the options
// of perf/bench/savina.
//
// Written for Go 1.19 (Debian 12): no newer language features.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// fanin's shared channel buffer: the consumer's "mailbox" capacity; the
// Savina set's mailboxes have the same.
const faninBuffer = 1024
const mailboxBuffer = faninBuffer

type kv struct {
	key string
	val interface{}
}

type result struct {
	seconds float64
	rate    float64
	extras  []kv
	ok      bool
}

func usage() {
	fmt.Fprint(os.Stderr, `usage: krillbench BENCH [--schedulers N] [options]
  spawn    --procs N
  ring     --procs N --laps M
  skynet   --leaves N --fanout F
  pingpong --pairs P --rounds K
  fanin    --producers P --messages K
  sv-pingpong --pings N          sv-count --messages N
  sv-fjcreate --actors N         sv-fjthroughput --actors A --messages M
  sv-threadring --actors A --hops H
  sv-chameneos --chameneos C --meetings N
  sv-big --actors A --pings P    sv-concdict --workers W --messages M --writes PCT
  sv-fib --n N                   sv-bank --accounts A --transactions N --window W
`)
}

func die(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "krillbench: "+format+"\n", args...)
	usage()
	os.Exit(2)
}

type param struct {
	name string
	def  int
}

var benchParams = map[string][]param{
	"spawn":    {{"procs", 1000000}},
	"ring":     {{"procs", 10000}, {"laps", 1000}},
	"skynet":   {{"leaves", 1000000}, {"fanout", 10}},
	"pingpong": {{"pairs", 1000}, {"rounds", 10000}},
	"fanin":    {{"producers", 2}, {"messages", 5000000}},
	// The Savina set (savina.go), with krill-savina's defaults.
	"sv-pingpong":     {{"pings", 1000000}},
	"sv-count":        {{"messages", 10000000}},
	"sv-fjcreate":     {{"actors", 1000000}},
	"sv-fjthroughput": {{"actors", 60}, {"messages", 50000}},
	"sv-threadring":   {{"actors", 100}, {"hops", 5000000}},
	"sv-chameneos":    {{"chameneos", 100}, {"meetings", 1000000}},
	"sv-big":          {{"actors", 120}, {"pings", 20000}},
	"sv-concdict":     {{"workers", 20}, {"messages", 50000}, {"writes", 10}},
	"sv-fib":          {{"n", 30}},
	"sv-bank":         {{"accounts", 1000}, {"transactions", 500000}, {"window", 1000}},
}

func main() {
	if len(os.Args) < 2 {
		die("missing BENCH")
	}
	bench := os.Args[1]
	if bench == "-h" || bench == "--help" {
		usage()
		return
	}
	params, known := benchParams[bench]
	if !known {
		die("unknown benchmark: %s", bench)
	}

	fs := flag.NewFlagSet(bench, flag.ContinueOnError)
	fs.Usage = usage
	schedulers := fs.Int("schedulers", runtime.NumCPU(), "GOMAXPROCS")
	values := make(map[string]*int)
	for _, p := range params {
		values[p.name] = fs.Int(p.name, p.def, p.name)
	}
	if err := fs.Parse(os.Args[2:]); err != nil {
		os.Exit(2)
	}
	if fs.NArg() != 0 {
		die("unexpected argument: %s", fs.Arg(0))
	}
	if *schedulers < 1 {
		die("--schedulers must be >= 1")
	}
	for _, p := range params {
		if *values[p.name] < 1 && p.name != "writes" {
			die("--%s must be >= 1", p.name)
		}
	}
	runtime.GOMAXPROCS(*schedulers)

	v := func(name string) int { return *values[name] }
	var r result
	switch bench {
	case "spawn":
		r = benchSpawn(v("procs"))
	case "ring":
		r = benchRing(v("procs"), v("laps"))
	case "skynet":
		if v("fanout") < 2 {
			die("--fanout must be >= 2")
		}
		r = benchSkynet(v("leaves"), v("fanout"))
	case "pingpong":
		r = benchPingpong(v("pairs"), v("rounds"))
	case "fanin":
		r = benchFanin(v("producers"), v("messages"))
	case "sv-pingpong":
		r = svPingpong(v("pings"))
	case "sv-count":
		r = svCount(v("messages"))
	case "sv-fjcreate":
		r = svFjcreate(v("actors"))
	case "sv-fjthroughput":
		r = svFjthroughput(v("actors"), v("messages"))
	case "sv-threadring":
		r = svThreadring(v("actors"), v("hops"))
	case "sv-chameneos":
		if v("chameneos") < 2 {
			die("--chameneos must be >= 2")
		}
		r = svChameneos(v("chameneos"), v("meetings"))
	case "sv-big":
		if v("actors") < 2 {
			die("--actors must be >= 2")
		}
		r = svBig(v("actors"), v("pings"))
	case "sv-concdict":
		if v("writes") > 100 {
			die("--writes must be a percentage")
		}
		r = svConcdict(v("workers"), v("messages"), v("writes"))
	case "sv-fib":
		if v("n") > 40 {
			die("--n must be <= 40")
		}
		r = svFib(v("n"))
	case "sv-bank":
		if v("accounts") < 2 {
			die("--accounts must be >= 2")
		}
		r = svBank(v("accounts"), v("transactions"), v("window"))
	}

	line := []kv{
		{"impl", "go"},
		{"bench", bench},
		{"schedulers", runtime.GOMAXPROCS(0)},
		{"seconds", r.seconds},
		{"rate", r.rate},
	}
	for _, p := range params {
		line = append(line, kv{p.name, v(p.name)})
	}
	line = append(line, r.extras...)
	fmt.Println(toJSON(line))
	if !r.ok {
		os.Exit(1)
	}
}

// toJSON encodes a flat object keeping the key order.
func toJSON(pairs []kv) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(p.key)
		val, err := json.Marshal(p.val)
		if err != nil {
			val = []byte("null")
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(val)
	}
	b.WriteByte('}')
	return b.String()
}

func secs(d time.Duration) float64 {
	if d <= 0 {
		d = 1
	}
	return d.Seconds()
}

// rssBytes is the resident set size of this process (/proc/self/statm).
func rssBytes() int64 {
	f, err := os.Open("/proc/self/statm")
	if err != nil {
		return 0
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	fields := strings.Fields(line)
	if len(fields) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(fields[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// spawn: N goroutines, each holding 8 bytes of state (a uint64) and blocked
// receiving on its own channel; then each is sent a message telling it to
// exit.
func benchSpawn(n int) result {
	mailboxes := make([]chan struct{}, n)
	var started, exited sync.WaitGroup
	started.Add(n)
	exited.Add(n)

	runtime.GC()
	rss0 := rssBytes()
	t0 := time.Now()
	for i := 0; i < n; i++ {
		mb := make(chan struct{})
		mailboxes[i] = mb
		go func(state uint64, mb chan struct{}) {
			started.Done()
			<-mb
			runtime.KeepAlive(state)
			exited.Done()
		}(uint64(i), mb)
	}
	spawnS := secs(time.Since(t0))
	// Not timed: let every goroutine reach its receive (so its stack is in
	// use) before sampling memory at the peak.
	started.Wait()
	// Memory per goroutine is the growth of the OS resident set size
	// (/proc/self/statm), the same measure krill-bench uses, so figures are
	// comparable across implementations. It includes each goroutine's channel
	// and the slice of channels (8 bytes each).
	rss1 := rssBytes()

	t2 := time.Now()
	for _, mb := range mailboxes {
		mb <- struct{}{}
	}
	exited.Wait()
	exitS := secs(time.Since(t2))

	perProc := float64(rss1-rss0) / float64(n)
	return result{
		seconds: spawnS,
		rate:    float64(n) / spawnS,
		extras: []kv{
			{"spawn_rate", float64(n) / spawnS},
			{"exit_rate", float64(n) / exitS},
			{"spawn_seconds", spawnS},
			{"exit_seconds", exitS},
			{"bytes_per_proc", float64(int64(perProc*10+0.5)) / 10},
			{"rss_before_bytes", rss0},
			{"rss_peak_bytes", rss1},
		},
		ok: true,
	}
}

// ring: N goroutines in a ring, each receiving on its own channel and
// sending to the next one's; a token carrying the hops left goes round M
// times (N*M hops).
func benchRing(n, laps int) result {
	hops := n * laps
	done := make(chan struct{})
	ts := time.Now()
	chans := make([]chan int, n)
	for i := range chans {
		chans[i] = make(chan int)
	}
	for i := 0; i < n; i++ {
		go func(in, next chan int) {
			for token := range in {
				if token == 0 {
					done <- struct{}{}
					continue
				}
				next <- token - 1
			}
		}(chans[i], chans[(i+1)%n])
	}
	t0 := time.Now()
	chans[0] <- hops
	<-done
	s := secs(time.Since(t0))
	for _, c := range chans {
		close(c)
	}
	return result{
		seconds: s,
		rate:    float64(hops) / s,
		extras:  []kv{{"hops", hops}, {"setup_seconds", t0.Sub(ts).Seconds()}},
		ok:      true,
	}
}

// skynet: a tree of goroutines with the given fanout; each leaf sends its
// ordinal to its parent's channel, each inner node sends the sum of its
// children.
func skynet(out chan<- int64, num int64, size, fanout int) {
	if size == 1 {
		out <- num
		return
	}
	children := fanout
	if size < children {
		children = size
	}
	base, rem := size/children, size%children
	rc := make(chan int64)
	for i := 0; i < children; i++ {
		sub := base
		if i < rem {
			sub++
		}
		go skynet(rc, num, sub, fanout)
		num += int64(sub)
	}
	var sum int64
	for i := 0; i < children; i++ {
		sum += <-rc
	}
	out <- sum
}

// skynetCount is the number of goroutines in the tree, root included.
func skynetCount(size, fanout int) int64 {
	if size == 1 {
		return 1
	}
	children := fanout
	if size < children {
		children = size
	}
	base, rem := size/children, size%children
	n := int64(1) + int64(children-rem)*skynetCount(base, fanout)
	if rem > 0 {
		n += int64(rem) * skynetCount(base+1, fanout)
	}
	return n
}

func benchSkynet(leaves, fanout int) result {
	out := make(chan int64)
	t0 := time.Now()
	go skynet(out, 0, leaves, fanout)
	got := <-out
	s := secs(time.Since(t0))
	procs := skynetCount(leaves, fanout)
	expected := int64(leaves) * int64(leaves-1) / 2
	ok := got == expected
	return result{
		seconds: s,
		rate:    float64(procs) / s,
		extras: []kv{
			{"result", got}, {"expected", expected}, {"ok", ok}, {"processes", procs},
		},
		ok: ok,
	}
}

// pingpong: P independent pairs, each with a ping and a pong goroutine and
// one unbuffered channel each way; K round trips per pair (2*P*K messages).
func benchPingpong(pairs, rounds int) result {
	var ready, done sync.WaitGroup
	goCh := make(chan struct{})
	ready.Add(pairs)
	done.Add(pairs)
	for p := 0; p < pairs; p++ {
		toPong := make(chan int)
		toPing := make(chan int)
		go func() {
			for v := range toPong {
				toPing <- v
			}
		}()
		go func() {
			ready.Done()
			<-goCh
			for i := 0; i < rounds; i++ {
				toPong <- i
				<-toPing
			}
			close(toPong)
			done.Done()
		}()
	}
	ready.Wait()
	t0 := time.Now()
	close(goCh)
	done.Wait()
	s := secs(time.Since(t0))
	msgs := 2 * pairs * rounds
	return result{
		seconds: s,
		rate:    float64(msgs) / s,
		extras:  []kv{{"messages_total", msgs}},
		ok:      true,
	}
}

// fanin: P producers each send K messages on one shared buffered channel
// (the consumer's mailbox); the consumer counts P*K messages.
func benchFanin(producers, messages int) result {
	total := producers * messages
	mailbox := make(chan int, faninBuffer)
	goCh := make(chan struct{})
	finished := make(chan int)
	var ready sync.WaitGroup
	ready.Add(producers)
	go func() {
		count := 0
		for range mailbox {
			count++
			if count == total {
				break
			}
		}
		finished <- count
	}()
	for p := 0; p < producers; p++ {
		go func() {
			ready.Done()
			<-goCh
			for i := 0; i < messages; i++ {
				mailbox <- i
			}
		}()
	}
	ready.Wait()
	t0 := time.Now()
	close(goCh)
	got := <-finished
	s := secs(time.Since(t0))
	return result{
		seconds: s,
		rate:    float64(total) / s,
		extras:  []kv{{"messages_total", total}, {"chan_buffer", faninBuffer}},
		ok:      got == total,
	}
}
