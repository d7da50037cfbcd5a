// bench/runtimes baseline: a bare length-prefixed pipe echo loop in Go.
//
// Reads frames (a 4-byte big-endian length, then that many bytes) from stdin and writes
// each one back unchanged, in one write. Exits 0 at the end of stdin. No sluice code:
// the floor a Go stdio worker cannot beat (stdio-go in runtimes_bench.cc).
// Build: cd bench/runtimes/pipe_echo && go build -o /tmp/pipe_echo .
package main

import (
	"bufio"
	"encoding/binary"
	"io"
	"os"
)

func main() {
	r := bufio.NewReaderSize(os.Stdin, 64<<10)
	buf := make([]byte, 4, 64<<10)
	for {
		if _, err := io.ReadFull(r, buf[:4]); err != nil {
			os.Exit(0)
		}
		n := int(binary.BigEndian.Uint32(buf[:4]))
		if n > 64<<20 {
			os.Exit(1)
		}
		if cap(buf) < 4+n {
			grown := make([]byte, 4, 4+n)
			copy(grown, buf[:4])
			buf = grown
		}
		buf = buf[:4+n]
		if _, err := io.ReadFull(r, buf[4:]); err != nil {
			os.Exit(1)
		}
		if _, err := os.Stdout.Write(buf); err != nil {
			os.Exit(1)
		}
	}
}
