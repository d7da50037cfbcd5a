package sluice

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"sluice.dev/sdk/go/sluicepb"
)

// Options tune a worker.
type Options struct {
	// MaxInflight is advertised to sluice in Hello: at most this many invocations at
	// once on this process (0 = no limit).
	MaxInflight uint32
}

var stderr io.Writer = os.Stderr

// worker serves one handler over a frame stream. The reading goroutine (Serve's
// caller) owns inflight; every handler runs in its own goroutine; frames are written
// under wmu from any goroutine.
type worker struct {
	h        Handler
	r        *bufio.Reader
	wmu      sync.Mutex
	w        io.Writer
	function string

	mu       sync.Mutex
	inflight map[uint64]context.CancelFunc
	wg       sync.WaitGroup
}

func (w *worker) send(f *sluicepb.Frame) error {
	data, err := EncodeFrame(f)
	if err != nil {
		return err
	}
	w.wmu.Lock()
	defer w.wmu.Unlock()
	_, err = w.w.Write(data)
	return err
}

func (w *worker) log(id uint64, level Level, msg string) {
	_ = w.send(&sluicepb.Frame{Kind: &sluicepb.Frame_Log{Log: &sluicepb.Log{Id: id, Level: level, Message: msg}}})
}

// Serve runs the protocol on r/w until sluice says Goodbye or closes r, waiting for
// the invocations in flight. It returns a *ProtocolError when sluice refuses the
// handshake or sends a bad frame (invocations still running are abandoned).
func Serve(r io.Reader, wr io.Writer, h Handler, opts Options) error {
	w := &worker{h: h, r: bufio.NewReaderSize(r, 64<<10), w: wr, inflight: map[uint64]context.CancelFunc{}}
	hello := &sluicepb.Hello{ProtocolVersion: ProtocolVersion, Sdk: SDKName, MaxInflight: opts.MaxInflight, Pid: uint32(os.Getpid())}
	if err := w.send(&sluicepb.Frame{Kind: &sluicepb.Frame_Hello{Hello: hello}}); err != nil {
		return fmt.Errorf("cannot talk to sluice: %w", err)
	}
	f, err := ReadFrame(w.r)
	if err == io.EOF {
		return protocolErrorf("sluice closed the stream before answering Hello")
	}
	if err != nil {
		return err
	}
	switch k := f.Kind.(type) {
	case *sluicepb.Frame_Goodbye:
		reason := k.Goodbye.GetReason()
		if reason == "" {
			reason = "(no reason)"
		}
		return protocolErrorf("sluice refused the handshake: %s", reason)
	case *sluicepb.Frame_HelloAck:
		if v := k.HelloAck.GetProtocolVersion(); v != ProtocolVersion {
			return protocolErrorf("sluice speaks protocol version %d, this SDK (%s) speaks %d", v, SDKName, ProtocolVersion)
		}
		w.function = k.HelloAck.GetFunction()
	default:
		return protocolErrorf("expected HelloAck as sluice's first frame, got %s", kindName(f))
	}
	for {
		f, err := ReadFrame(w.r)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		switch k := f.Kind.(type) {
		case *sluicepb.Frame_Invoke:
			if err := w.start(k.Invoke); err != nil {
				return err
			}
		case *sluicepb.Frame_Cancel:
			w.mu.Lock()
			if cancel, ok := w.inflight[k.Cancel.GetId()]; ok {
				cancel() // the handler's ctx is done; its Result still goes out, so sluice sees the worker is alive
			}
			w.mu.Unlock()
		case *sluicepb.Frame_Goodbye:
			w.wg.Wait()
			return nil
		default:
			return protocolErrorf("unexpected %s frame from sluice after the handshake", kindName(f))
		}
	}
	w.wg.Wait()
	return nil
}

func (w *worker) start(inv *sluicepb.Invoke) error {
	id := inv.GetId()
	ctx := context.WithValue(context.Background(), ctxKey{}, &invocation{w: w, id: id, function: w.function})
	var cancel context.CancelFunc
	if ms := inv.GetTimeoutMs(); ms > 0 {
		ctx, cancel = context.WithTimeout(ctx, time.Duration(ms)*time.Millisecond)
	} else {
		ctx, cancel = context.WithCancel(ctx)
	}
	w.mu.Lock()
	if _, dup := w.inflight[id]; dup {
		w.mu.Unlock()
		cancel()
		return protocolErrorf("Invoke id %d is already in flight", id)
	}
	w.inflight[id] = cancel
	w.mu.Unlock()
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer cancel()
		res := w.call(ctx, id, inv.GetEvent())
		w.mu.Lock()
		delete(w.inflight, id)
		w.mu.Unlock()
		if err := w.send(&sluicepb.Frame{Kind: &sluicepb.Frame_Result{Result: res}}); err != nil {
			if _, ok := err.(*ProtocolError); ok {
				_ = w.send(&sluicepb.Frame{Kind: &sluicepb.Frame_Result{Result: &sluicepb.Result{
					Id: id, Status: sluicepb.Result_ERROR, ErrorMessage: "result too large: " + err.Error()}}})
			}
		}
	}()
	return nil
}

func (w *worker) call(ctx context.Context, id uint64, ev *Event) (res *sluicepb.Result) {
	res = &sluicepb.Result{Id: id}
	defer func() {
		if p := recover(); p != nil {
			res = &sluicepb.Result{Id: id, Status: sluicepb.Result_ERROR, ErrorMessage: fmt.Sprintf("panic: %v", p)}
			w.log(id, Error, fmt.Sprintf("panic: %v\n%s", p, debug.Stack()))
		}
	}()
	if ev == nil {
		ev = &Event{}
	}
	out, err := w.h(ctx, ev)
	if err != nil {
		res.Status, res.RetryAfterMs = classify(err)
		res.ErrorMessage = err.Error()
		return res
	}
	res.Status = sluicepb.Result_OK
	if out != nil {
		res.Output = out.Output
		res.ContentType = out.ContentType
		res.Emit = out.Emit
	}
	return res
}

// Run serves h on this process's stdin and stdout, then exits: 0 after Goodbye or
// the end of stdin, 2 (with one line on stderr) on a protocol error.
//
// stdout is reserved for frames: Run keeps a private copy of fd 1 and points fd 1 at
// stderr, so fmt.Print, os.Stdout and child processes cannot corrupt the stream.
func Run(h Handler, opts ...Options) {
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if stdoutIsTerminal() {
		fmt.Fprintln(os.Stderr, "sluice-sdk: stdout is a terminal, but it carries binary frames to sluice: "+
			"this program is a sluice function worker (runtime: stdio) and is started by sluice")
		os.Exit(2)
	}
	out, err := reserveStdout()
	if err != nil {
		fmt.Fprintf(os.Stderr, "sluice-sdk: cannot reserve stdout for frames: %v\n", err)
		os.Exit(2)
	}
	if err := Serve(os.Stdin, out, h, o); err != nil {
		fmt.Fprintf(os.Stderr, "sluice-sdk: %v\n", err)
		os.Exit(2)
	}
	os.Exit(0)
}
