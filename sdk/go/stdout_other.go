//go:build unix && !linux

package sluice

import (
	"os"
	"syscall"
)

func stdoutIsTerminal() bool { return false } // checked on Linux only

// reserveStdout returns a private copy of fd 1 and points fd 1 at stderr.
func reserveStdout() (*os.File, error) {
	fd, err := syscall.Dup(1)
	if err != nil {
		return nil, err
	}
	syscall.CloseOnExec(fd)
	if err := syscall.Dup2(2, 1); err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), "sluice-frames"), nil
}
