// The Go baseline of bench/cold_start: a bare binary that reads one line from stdin
// and writes it back, uppercased (what the echo example answers), then exits.
package main

import (
	"bufio"
	"bytes"
	"os"
)

func main() {
	line, _ := bufio.NewReader(os.Stdin).ReadBytes('\n')
	os.Stdout.Write(bytes.ToUpper(line))
}
