package sluice

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
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

// How invocations run. One goroutine at a time holds the reading role: it reads a
// frame, and an Invoke runs its handler right there, on the reading goroutine
// ("inline"); that goroutine then writes the Result and reads on. No goroutine start,
// no wake-up of another thread, one write per Result (with the invocation's Log
// frames): as cheap as a bare pipe loop. While more frames are already buffered, a
// few Results are held back and written together.
//
// So that a handler that blocks or computes for long cannot stall the stream (other
// Invokes, a Cancel for it, Goodbye), a timer passes the reading role to a new
// goroutine when an inline handler is still running after handoffAfter (writing what
// was held back); the handler's goroutine then only answers its invocation and ends.
// A handler that took longer than slowAfter makes the next invocations start in
// goroutines of their own (in parallel, as CPU-bound or I/O-bound functions need),
// until one of them is quick again.
var (
	handoffAfter = time.Millisecond
	slowAfter    = 100 * time.Microsecond
)

const (
	holdResults = 16        // Results held back at most
	holdBytes   = 64 << 10  // output held back beyond this is written at once
	maxKeptBuf  = 256 << 10 // an output buffer grown beyond this is not kept
)

// worker serves one handler over a frame stream.
type worker struct {
	h        Handler
	fr       frameReader   // used by the goroutine that holds the reading role only
	dec      invokeDecoder // likewise
	function string

	handoffAfter, slowAfter time.Duration // the package's, when Serve started (tests change them)

	wmu sync.Mutex // guards w, out and every invocation's held
	w   io.Writer
	out []byte // encoded frames not written yet

	mu       sync.Mutex
	inflight map[uint64]*invocation // those a Cancel can reach: not the one running inline
	wg       sync.WaitGroup         // invocations not yet answered

	slow atomic.Bool // the last handler to finish was slow: start invocations in goroutines
	done chan error  // where the reading role ends: nil (Goodbye, end of stream) or the error
}

// encodeError is a frame the SDK could not encode (not a write error).
type encodeError struct{ err error }

func (e *encodeError) Error() string { return e.err.Error() }
func (e *encodeError) Unwrap() error { return e.err }

// commit takes out (w.out with one more frame from start on, or err) as w.out, and
// writes w.out unless hold. Called with wmu held.
func (w *worker) commit(out []byte, start int, err error, hold bool) error {
	if n := len(out) - start - 4; err == nil && n > MaxFrameBytes {
		err = protocolErrorf("frame of %d bytes exceeds the %d-byte limit", n, MaxFrameBytes)
	}
	if err != nil {
		w.out = out[:start]
		if cap(w.out) > maxKeptBuf {
			w.out = append([]byte(nil), w.out...)
		}
		if _, ok := err.(*ProtocolError); !ok {
			err = &encodeError{err}
		}
		return err
	}
	w.out = out
	if hold && len(out) < holdBytes {
		return nil
	}
	return w.flushLocked()
}

func (w *worker) flushLocked() error {
	if len(w.out) == 0 {
		return nil
	}
	_, err := w.w.Write(w.out)
	if cap(w.out) <= maxKeptBuf {
		w.out = w.out[:0]
	} else {
		w.out = nil
	}
	return err
}

// flush writes what is held back.
func (w *worker) flush() {
	w.wmu.Lock()
	_ = w.flushLocked()
	w.wmu.Unlock()
}

// send writes f (encoded by the generic encoder) with what is held back.
func (w *worker) send(f *sluicepb.Frame) error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	start := len(w.out)
	out, err := appendFrame(w.out, f)
	return w.commit(out, start, err, false)
}

// sendResult writes c's Result, with c's held Log frames (or holds it back: hold).
func (w *worker) sendResult(c *invocation, res *sluicepb.Result, hold bool) error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	c.held = false
	start := len(w.out)
	out, ok := appendResultFrame(w.out, res)
	var err error
	if !ok {
		out, err = appendFrame(out, &sluicepb.Frame{Kind: &sluicepb.Frame_Result{Result: res}})
	}
	return w.commit(out, start, err, hold)
}

// log sends a Log frame of c; held back while c runs inline (it goes with c's Result).
func (w *worker) log(c *invocation, level Level, msg string) {
	msg = validUTF8(msg)
	w.wmu.Lock()
	defer w.wmu.Unlock()
	start := len(w.out)
	_ = w.commit(appendLogFrame(w.out, c.id, level, msg), start, nil, c.held)
}

// Serve runs the protocol on r/w until sluice says Goodbye or closes r, waiting for
// the invocations in flight. It returns a *ProtocolError when sluice refuses the
// handshake or sends a bad frame (invocations still running are abandoned).
func Serve(r io.Reader, wr io.Writer, h Handler, opts Options) error {
	w := &worker{h: h, fr: frameReader{bufio.NewReaderSize(r, 64<<10)}, w: wr,
		inflight: map[uint64]*invocation{}, done: make(chan error, 1), handoffAfter: handoffAfter, slowAfter: slowAfter}
	hello := &sluicepb.Hello{ProtocolVersion: ProtocolVersion, Sdk: SDKName, MaxInflight: opts.MaxInflight, Pid: uint32(os.Getpid())}
	if err := w.send(&sluicepb.Frame{Kind: &sluicepb.Frame_Hello{Hello: hello}}); err != nil {
		return fmt.Errorf("cannot talk to sluice: %w", err)
	}
	body, err := w.fr.next()
	if err == io.EOF {
		return protocolErrorf("sluice closed the stream before answering Hello")
	}
	if err != nil {
		return err
	}
	f, err := DecodeFrame(body)
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
	// The reading role starts on a goroutine of its own: a handler that calls
	// runtime.Goexit inline ends that goroutine, never Serve's.
	go w.read()
	if err := <-w.done; err != nil {
		return err
	}
	w.wg.Wait()
	return nil
}

// reader is the reading role on one goroutine.
type reader struct {
	w    *worker
	t    *time.Timer // armed while cur runs inline: passes the role on (takeOver)
	cur  *invocation
	held int // Results held back since the last write
}

// read holds the reading role until the stream ends (then it reports to done) or it
// passes the role on.
func (w *worker) read() {
	r := &reader{w: w}
	if passed, err := r.loop(); !passed {
		if err == nil {
			w.flush() // what was held back
		} else if w.wmu.TryLock() { // after a protocol error Serve returns at once: no waiting for a blocked write
			_ = w.flushLocked()
			w.wmu.Unlock()
		}
		w.done <- err
	}
}

// loop reads and dispatches frames. passed: the reading role went to another goroutine.
func (r *reader) loop() (passed bool, err error) {
	w := r.w
	for {
		if r.held > 0 && !w.fr.buffered() { // write what is held back before waiting for input
			r.held = 0
			r.cur = nil
			r.t.Reset(w.handoffAfter) // sluice may be slow to read: keep reading meanwhile
			w.flush()
			if !r.t.Stop() {
				return true, nil
			}
		}
		body, err := w.fr.next()
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		inv, ok := w.dec.decode(body)
		if !ok {
			f, err := DecodeFrame(body)
			if err != nil {
				return false, err
			}
			if inv = f.GetInvoke(); inv == nil {
				if done, err := r.other(f); done {
					return false, err
				}
				continue
			}
		}
		inline := !w.slow.Load()
		c, err := w.start(inv, inline)
		if err != nil {
			return false, err
		}
		if !inline {
			go w.runAlone(c)
		} else if !r.runInline(c) {
			return true, nil
		}
	}
}

// other handles a frame other than Invoke; done: the reading ends (with err).
func (r *reader) other(f *sluicepb.Frame) (done bool, err error) {
	w := r.w
	switch k := f.Kind.(type) {
	case *sluicepb.Frame_Cancel:
		w.mu.Lock()
		if c, ok := w.inflight[k.Cancel.GetId()]; ok {
			c.cancel() // the handler's ctx is done; its Result still goes out, so sluice sees the worker is alive
		}
		w.mu.Unlock()
		return false, nil
	case *sluicepb.Frame_Goodbye:
		return true, nil
	}
	return true, protocolErrorf("unexpected %s frame from sluice after the handshake", kindName(f))
}

// start makes the invocation of inv; one that runs in a goroutine of its own is in
// w.inflight from now on (an inline one only once it passes the reading role on).
func (w *worker) start(inv *sluicepb.Invoke, inline bool) (*invocation, error) {
	ev := inv.GetEvent()
	if ev == nil {
		ev = &Event{}
	}
	c := &invocation{w: w, id: inv.GetId(), function: w.function, ev: ev, begin: time.Now(),
		timeout: time.Duration(inv.GetTimeoutMs()) * time.Millisecond, held: inline}
	w.mu.Lock()
	if _, dup := w.inflight[c.id]; dup {
		w.mu.Unlock()
		return nil, protocolErrorf("Invoke id %d is already in flight", c.id)
	}
	if !inline {
		w.inflight[c.id] = c
	}
	w.mu.Unlock()
	w.wg.Add(1)
	return c, nil
}

// runInline runs c on the reading goroutine, and reports whether this goroutine
// still holds the reading role.
func (r *reader) runInline(c *invocation) (reading bool) {
	w := r.w
	more := w.fr.buffered() // the next frame is here already: c's Result may wait for it
	// The timer covers the handler and the write of its Result (sluice may be slow to
	// read it): either blocking for long passes the reading role on.
	r.cur = c
	if r.t == nil {
		r.t = time.AfterFunc(w.handoffAfter, r.takeOver)
	} else {
		r.t.Reset(w.handoffAfter)
	}
	returned := false
	defer func() {
		if !returned { // the handler called runtime.Goexit: answer it, and read on elsewhere
			kept := r.t.Stop()
			w.answer(c, goexitResult(c.id), false)
			if kept {
				go w.read()
			}
		}
	}()
	res := w.call(c)
	returned = true
	quick := time.Since(c.begin) <= w.slowAfter
	w.slow.Store(!quick)
	hold := quick && more && r.held < holdResults-1
	w.answer(c, res, hold)
	if !r.t.Stop() { // the reading role is gone: the new reader does not know what is held
		if hold {
			w.flush()
		}
		return false
	}
	if hold {
		r.held++
	} else {
		r.held = 0
	}
	return true
}

// takeOver runs (in a goroutine of its own) when the reading goroutine has been busy
// for handoffAfter, running r.cur inline or writing: this goroutine takes the reading
// role. For r.cur: it becomes reachable by Cancel, what was held back is written, and
// the next invocations start in goroutines of their own.
func (r *reader) takeOver() {
	w, c := r.w, r.cur
	if c != nil {
		w.slow.Store(true)
		w.mu.Lock()
		if !c.answered {
			w.inflight[c.id] = c
		}
		w.mu.Unlock()
		go w.release(c) // a write may block: not on the reading goroutine
	}
	w.read()
}

// release writes c's held Log frames (and anything else held back), and holds no more.
func (w *worker) release(c *invocation) {
	w.wmu.Lock()
	c.held = false
	_ = w.flushLocked()
	w.wmu.Unlock()
}

// runAlone runs c on a goroutine of its own.
func (w *worker) runAlone(c *invocation) {
	returned := false
	defer func() {
		if !returned {
			w.answer(c, goexitResult(c.id), false)
		}
	}()
	began := time.Now()
	res := w.call(c)
	returned = true
	w.slow.Store(time.Since(began) > w.slowAfter)
	w.answer(c, res, false)
}

func goexitResult(id uint64) *sluicepb.Result {
	return &sluicepb.Result{Id: id, Status: sluicepb.Result_ERROR, ErrorMessage: "the handler called runtime.Goexit"}
}

// answer ends c: its context is cancelled, it is no longer in flight, and its Result
// goes out (or is held back: hold).
func (w *worker) answer(c *invocation, res *sluicepb.Result, hold bool) {
	defer w.wg.Done()
	c.cancel()
	w.mu.Lock()
	c.answered = true
	delete(w.inflight, c.id)
	w.mu.Unlock()
	res.ContentType, res.ErrorMessage = validUTF8(res.ContentType), validUTF8(res.ErrorMessage)
	err := w.sendResult(c, res, hold)
	var why string
	switch err.(type) {
	case *ProtocolError:
		why = "result too large: "
	case *encodeError: // an emitted event that protobuf cannot encode (a string that is not UTF-8)
		why = "result cannot be encoded: "
	default:
		return
	}
	_ = w.sendResult(c, &sluicepb.Result{Id: c.id, Status: sluicepb.Result_ERROR, ErrorMessage: why + validUTF8(err.Error())}, false)
}

func (w *worker) call(c *invocation) (res *sluicepb.Result) {
	res = &sluicepb.Result{Id: c.id}
	defer func() {
		if p := recover(); p != nil {
			res = &sluicepb.Result{Id: c.id, Status: sluicepb.Result_ERROR, ErrorMessage: fmt.Sprintf("panic: %v", p)}
			w.log(c, Error, fmt.Sprintf("panic: %v\n%s", p, debug.Stack()))
		}
	}()
	out, err := w.h(c, c.ev)
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
