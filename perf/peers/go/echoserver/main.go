// Command echoserver is the Go peer of examples/krill-echo: a goroutine per connection copying
// what it reads back to the sender. GOMAXPROCS comes from the environment. It prints
// "port N" once listening.
//
//	echoserver [-port P]    (0: a free port)
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
)

// echo copies with a plain read/write loop: io.Copy(c, c) would splice through a pipe, two
// more descriptors per connection, which 10,000 connections cannot afford under a 20,000 limit.
func echo(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func main() {
	port := flag.Int("port", 0, "TCP port (0: a free one)")
	flag.Parse()
	ln, err := net.Listen("tcp", fmt.Sprintf(":%d", *port))
	if err != nil {
		fmt.Fprintf(os.Stderr, "echoserver: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("port %d\n", ln.Addr().(*net.TCPAddr).Port)
	for {
		c, err := ln.Accept()
		if err != nil {
			fmt.Fprintf(os.Stderr, "echoserver: %v\n", err)
			os.Exit(1)
		}
		go echo(c)
	}
}
