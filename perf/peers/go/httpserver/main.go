// Command httpserver is the Go peer of examples/krill-http: net/http answering every request
// "Hello, World!\n", as a Go programmer would write it. GOMAXPROCS comes from the environment
// (perf/run-http sets it to the scheduler count). It prints "port N" once listening.
//
//	httpserver [-port P]    (0: a free port)
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
)

func main() {
	port := flag.Int("port", 0, "TCP port (0: a free one)")
	flag.Parse()
	ln, err := net.Listen("tcp", fmt.Sprintf(":%d", *port))
	if err != nil {
		fmt.Fprintf(os.Stderr, "httpserver: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("port %d\n", ln.Addr().(*net.TCPAddr).Port)
	body := []byte("Hello, World!\n")
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(body)
	})
	if err := http.Serve(ln, h); err != nil {
		fmt.Fprintf(os.Stderr, "httpserver: %v\n", err)
		os.Exit(1)
	}
}
