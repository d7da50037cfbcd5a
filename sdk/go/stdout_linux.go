//go:build linux

package sluice

import (
	"os"
	"syscall"
	"unsafe"
)

func stdoutIsTerminal() bool {
	var t syscall.Termios
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, 1, syscall.TCGETS, uintptr(unsafe.Pointer(&t)))
	return errno == 0
}

// reserveStdout returns a private copy of fd 1 and points fd 1 at stderr.
func reserveStdout() (*os.File, error) {
	fd, err := syscall.Dup(1)
	if err != nil {
		return nil, err
	}
	syscall.CloseOnExec(fd)
	if err := syscall.Dup3(2, 1, 0); err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), "sluice-frames"), nil
}
