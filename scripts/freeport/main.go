// Command freeport prints N distinct free TCP ports on 127.0.0.1, one per line
// (N defaults to 1). The scripts that start test services (scripts/kafka.sh,
// scripts/redis.sh) use it so that several test runs can share a machine.
//
//	go run ./scripts/freeport 2
package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
)

func main() {
	n := 1
	if len(os.Args) > 1 {
		v, err := strconv.Atoi(os.Args[1])
		if err != nil || v < 1 || v > 64 {
			fmt.Fprintf(os.Stderr, "usage: freeport [N]  (1 <= N <= 64), got %q\n", os.Args[1])
			os.Exit(2)
		}
		n = v
	}
	// Hold every listener open until all ports are chosen, so the N ports differ.
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintf(os.Stderr, "freeport: %v\n", err)
			os.Exit(1)
		}
		ls = append(ls, l)
	}
	for _, l := range ls {
		fmt.Println(l.Addr().(*net.TCPAddr).Port)
		l.Close()
	}
}
