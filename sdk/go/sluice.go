// Package sluice writes sluice functions in Go: it speaks the stdio worker frame
// protocol v1 (schemas/worker.proto) on the process's stdin and stdout.
//
//	func main() {
//		sluice.Run(func(ctx context.Context, ev *sluice.Event) (*sluice.Response, error) {
//			return &sluice.Response{Output: bytes.ToUpper(ev.Data)}, nil
//		})
//	}
package sluice

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"sluice.dev/sdk/go/sluicepb"
)

// Event is the CloudEvents envelope sluice delivers (schemas/event.proto).
type Event = sluicepb.Event

// Handler handles one invocation. Return an error made by Reject to dead-letter the
// event, by RetryAfter to hint the next attempt's delay, or any other error to fail
// it (retried under the function's policy). ctx carries the invocation's deadline and
// is cancelled when sluice cancels the invocation.
type Handler func(ctx context.Context, ev *Event) (*Response, error)

// Response is a successful result: the output, its content type, and events to emit.
type Response struct {
	Output      []byte
	ContentType string
	Emit        []*Event
}

type rejectError struct{ err error }

func (e *rejectError) Error() string { return e.err.Error() }
func (e *rejectError) Unwrap() error { return e.err }

// Reject marks err as permanent: the event goes straight to the dead-letter queue.
func Reject(err error) error { return &rejectError{err} }

// Rejectf is Reject(fmt.Errorf(...)).
func Rejectf(format string, args ...any) error { return Reject(fmt.Errorf(format, args...)) }

type retryError struct {
	err   error
	after time.Duration
}

func (e *retryError) Error() string { return e.err.Error() }
func (e *retryError) Unwrap() error { return e.err }

// RetryAfter fails the invocation with a hint for the next attempt's delay.
func RetryAfter(after time.Duration, err error) error { return &retryError{err, after} }

type ctxKey struct{}

// InvocationID is the id of the invocation ctx belongs to (0 outside a handler).
func InvocationID(ctx context.Context) uint64 {
	if inv, ok := ctx.Value(ctxKey{}).(*invocation); ok {
		return inv.id
	}
	return 0
}

// FunctionName is the function's name as sluice announced it in HelloAck.
func FunctionName(ctx context.Context) string {
	if inv, ok := ctx.Value(ctxKey{}).(*invocation); ok {
		return inv.function
	}
	return ""
}

// Level is a log level.
type Level = sluicepb.Log_Level

// Log levels.
const (
	Debug = sluicepb.Log_DEBUG
	Info  = sluicepb.Log_INFO
	Warn  = sluicepb.Log_WARN
	Error = sluicepb.Log_ERROR
)

// Log sends a log line to sluice, tagged with ctx's invocation. Outside a handler
// (no invocation in ctx) it is written to stderr.
func Log(ctx context.Context, level Level, msg string) {
	inv, ok := ctx.Value(ctxKey{}).(*invocation)
	if !ok {
		fmt.Fprintf(stderr, "%s: %s\n", level, msg)
		return
	}
	inv.w.log(inv, level, msg)
}

// Debugf, Infof, Warnf and Errorf log a formatted line (see Log).
func Debugf(ctx context.Context, format string, args ...any) {
	Log(ctx, Debug, fmt.Sprintf(format, args...))
}
func Infof(ctx context.Context, format string, args ...any) {
	Log(ctx, Info, fmt.Sprintf(format, args...))
}
func Warnf(ctx context.Context, format string, args ...any) {
	Log(ctx, Warn, fmt.Sprintf(format, args...))
}
func Errorf(ctx context.Context, format string, args ...any) {
	Log(ctx, Error, fmt.Sprintf(format, args...))
}

// NewEvent builds an event to emit: a random UUID id, spec version 1.0, and the
// source "/sluice/function/<name>" when ctx belongs to an invocation. Set other
// fields on the result.
func NewEvent(ctx context.Context, typ string, data []byte) *Event {
	var u [16]byte
	_, _ = rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	ev := &Event{
		Id:          fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:]),
		SpecVersion: "1.0",
		Type:        typ,
		Data:        data,
	}
	if name := FunctionName(ctx); name != "" {
		ev.Source = "/sluice/function/" + name
	}
	return ev
}

func classify(err error) (sluicepb.Result_Status, uint32) {
	var rej *rejectError
	if errors.As(err, &rej) {
		return sluicepb.Result_REJECTED, 0
	}
	var retry *retryError
	if errors.As(err, &retry) {
		ms := retry.after.Milliseconds()
		if ms < 0 {
			ms = 0
		}
		return sluicepb.Result_ERROR, uint32(ms)
	}
	return sluicepb.Result_ERROR, 0
}
