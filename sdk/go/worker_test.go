package sluice

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"sluice.dev/sdk/go/sluicepb"
)

// Tests of how invocations run (worker.go): inline on the reading goroutine, the
// reading role passed on when a handler or a write blocks, Results held back while
// input is buffered, Log frames written with their Result.

// deterministic makes handlers never count as slow and never pass the reading role on
// by time alone (for tests whose handlers never block), until the test ends.
func deterministic(t *testing.T) {
	h, s := handoffAfter, slowAfter
	handoffAfter, slowAfter = time.Hour, time.Hour
	t.Cleanup(func() { handoffAfter, slowAfter = h, s })
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// recorder keeps each Write call.
type recorder struct {
	mu     sync.Mutex
	writes [][]byte
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes = append(r.writes, append([]byte(nil), p...))
	return len(p), nil
}

func (r *recorder) all() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Join(r.writes, nil)
}

func await[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(60 * time.Second):
		t.Fatalf("hung waiting for %s", what)
	}
	var zero T
	return zero
}

// goroutineID is the id of the calling goroutine (from its stack trace header).
func goroutineID() string {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	return strings.Fields(string(buf))[1]
}

// One invocation at a time, as sluice sends them at concurrency 1: every handler runs
// on the same goroutine (no goroutine per call), and each invocation's Log frame and
// Result go out in one write.
func TestOneAtATimeRunsInlineOneWriteEach(t *testing.T) {
	deterministic(t)
	var ids []string
	h := func(ctx context.Context, ev *Event) (*Response, error) {
		ids = append(ids, goroutineID())
		Infof(ctx, "got %s", ev.Id)
		return &Response{Output: ev.Data}, nil
	}
	inR, inW := io.Pipe()
	writes := make(chan []byte, 16)
	out := writerFunc(func(p []byte) (int, error) { writes <- append([]byte(nil), p...); return len(p), nil })
	done := make(chan error, 1)
	go func() { done <- Serve(inR, out, h, Options{}) }()
	await(t, writes, "Hello")
	inW.Write(fixture(t, "hello_ack"))
	for i := uint64(1); i <= 20; i++ {
		inW.Write(invoke(t, i, fmt.Sprint("d", i)))
		frames := readAll(t, await(t, writes, "a Result"))
		if len(frames) != 2 || frames[0].GetLog().GetId() != i || frames[0].GetLog().GetMessage() != fmt.Sprint("got ev-", i) ||
			frames[1].GetResult().GetId() != i || string(frames[1].GetResult().GetOutput()) != fmt.Sprint("d", i) {
			t.Fatalf("invocation %d: one write of %v, want its Log and its Result", i, frames)
		}
	}
	inW.Write(fixture(t, "goodbye"))
	if err := await(t, done, "Serve"); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("handlers ran on goroutines %v, want one", ids)
		}
	}
}

// Many Invokes buffered at once: their Results go out a few per write, all of them.
func TestBufferedInvokesShareWrites(t *testing.T) {
	deterministic(t)
	const n = 40
	in := fixture(t, "hello_ack")
	for i := uint64(1); i <= n; i++ {
		in = append(in, invoke(t, i, "x")...)
	}
	in = append(in, fixture(t, "goodbye")...)
	var rec recorder
	if err := Serve(bytes.NewReader(in), &rec, func(ctx context.Context, ev *Event) (*Response, error) {
		return &Response{Output: []byte(ev.Id)}, nil
	}, Options{}); err != nil {
		t.Fatal(err)
	}
	seen := map[uint64]bool{}
	for _, w := range rec.writes[1:] {
		frames := readAll(t, w)
		if len(frames) > holdResults {
			t.Errorf("%d Results in one write", len(frames))
		}
		for _, f := range frames {
			if r := f.GetResult(); r != nil && string(r.GetOutput()) == fmt.Sprint("ev-", r.GetId()) {
				seen[r.GetId()] = true
			}
		}
	}
	if len(seen) != n || len(rec.writes) > 1+(n+holdResults-1)/holdResults {
		t.Errorf("%d Results in %d writes", len(seen), len(rec.writes))
	}
}

// A handler that waits for a later invocation: the reading role must move on, and
// the Log frame it wrote before waiting must go out while it waits.
func TestBlockedInlineHandlerPassesTheReadingOn(t *testing.T) {
	release, logged := make(chan struct{}), make(chan struct{})
	var once sync.Once
	var rec recorder
	out := writerFunc(func(p []byte) (int, error) {
		for _, f := range readAll(t, p) {
			if f.GetLog().GetId() == 1 {
				once.Do(func() { close(logged) })
			}
		}
		return rec.Write(p)
	})
	h := func(ctx context.Context, ev *Event) (*Response, error) {
		switch string(ev.Data) {
		case "wait":
			Infof(ctx, "waiting")
			<-logged
			<-release
		case "free":
			<-logged // no other frame goes out before the Log
			close(release)
		}
		return &Response{Output: ev.Data}, nil
	}
	inR, inW := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- Serve(inR, out, h, Options{}) }()
	inW.Write(fixture(t, "hello_ack"))
	inW.Write(invoke(t, 1, "wait"))
	inW.Write(invoke(t, 2, "free"))
	await(t, logged, "the Log frame of a waiting inline handler")
	inW.Write(fixture(t, "goodbye"))
	if err := await(t, done, "Serve"); err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, f := range readAll(t, rec.all())[1:] {
		if l := f.GetLog(); l != nil {
			order = append(order, fmt.Sprintf("log %d %s", l.GetId(), l.GetMessage()))
		}
		if r := f.GetResult(); r != nil {
			order = append(order, fmt.Sprintf("result %d %s", r.GetId(), r.GetOutput()))
		}
	}
	if fmt.Sprint(order) != "[log 1 waiting result 2 free result 1 wait]" {
		t.Errorf("frames %q", order)
	}
}

// sluice reads the worker's stdout only after it has written all it wanted to: a
// Result write that blocks must not stop the reading.
func TestBlockedResultWriteDoesNotStopReading(t *testing.T) {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- Serve(inR, outW, func(ctx context.Context, ev *Event) (*Response, error) {
			Infof(ctx, "log of %s", ev.Id)
			return &Response{Output: ev.Data}, nil
		}, Options{})
		outW.Close()
	}()
	if _, err := ReadFrame(outR); err != nil { // Hello
		t.Fatal(err)
	}
	const n = 200
	wrote := make(chan struct{})
	go func() {
		inW.Write(fixture(t, "hello_ack"))
		for i := uint64(1); i <= n; i++ {
			inW.Write(invoke(t, i, "x"))
		}
		inW.Write(fixture(t, "goodbye"))
		close(wrote)
	}()
	await(t, wrote, "the worker to read all its input while its output is not read")
	results := 0
	for {
		f, err := ReadFrame(outR)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if f.GetResult() != nil {
			results++
		}
	}
	if err := await(t, done, "Serve"); err != nil || results != n {
		t.Errorf("Serve: %v, %d Results", err, results)
	}
}

func TestGoexitInAHandlerIsAnswered(t *testing.T) {
	h := func(ctx context.Context, ev *Event) (*Response, error) {
		switch string(ev.Data) {
		case "exit":
			runtime.Goexit()
		case "slow": // the next invocations start in goroutines of their own
			time.Sleep(5 * time.Millisecond)
		}
		return &Response{Output: ev.Data}, nil
	}
	in := fixture(t, "hello_ack")
	for i, d := range []string{"exit", "ok", "slow", "exit", "exit", "ok"} {
		in = append(in, invoke(t, uint64(i+1), d)...)
	}
	in = append(in, fixture(t, "goodbye")...)
	frames, err := serve(t, h, in)
	if err != nil {
		t.Fatal(err)
	}
	got := map[uint64]string{}
	for _, f := range frames {
		if r := f.GetResult(); r != nil {
			got[r.GetId()] = fmt.Sprintf("%s%s", r.GetOutput(), r.GetErrorMessage())
		}
	}
	const exited = "the handler called runtime.Goexit"
	if fmt.Sprint(got) != fmt.Sprint(map[uint64]string{1: exited, 2: "ok", 3: "slow", 4: exited, 5: exited, 6: "ok"}) {
		t.Errorf("results %v", got)
	}
}

// The handler's ctx: a standard context made on first use, cancelled by Cancel, by
// the deadline, and once the invocation is answered.
func TestInvocationContext(t *testing.T) {
	type seen struct {
		deadline        bool
		errBefore       error
		child, after    error
		cause           error
		afterFuncCalled bool
		value           any
	}
	results := make(chan seen, 3)
	var stashed context.Context
	h := func(ctx context.Context, ev *Event) (*Response, error) {
		var s seen
		_, s.deadline = ctx.Deadline()
		s.errBefore = ctx.Err()
		s.value = ctx.Value("some key")
		switch string(ev.Data) {
		case "cancel":
			child, stop := context.WithCancel(ctx)
			defer stop()
			called := make(chan struct{})
			context.AfterFunc(ctx, func() { close(called) })
			<-child.Done()
			<-called
			s.child, s.after, s.cause, s.afterFuncCalled = child.Err(), ctx.Err(), context.Cause(ctx), true
		case "deadline":
			<-ctx.Done()
			s.after = ctx.Err()
		case "stash":
			stashed = ctx
		}
		results <- s
		return nil, nil
	}
	in := fixture(t, "hello_ack")
	in = append(in, invoke(t, 1, "cancel")...) // no timeout_ms
	in = append(in, encode(t, &sluicepb.Frame{Kind: &sluicepb.Frame_Invoke{Invoke: &sluicepb.Invoke{
		Id: 2, TimeoutMs: 5, Event: &Event{Data: []byte("deadline")}}}})...)
	in = append(in, invoke(t, 3, "stash")...)
	in = append(in, cancelFrame(t, 1)...)
	in = append(in, fixture(t, "goodbye")...)
	if _, err := serve(t, h, in); err != nil {
		t.Fatal(err)
	}
	close(results)
	var all []string
	for s := range results {
		all = append(all, fmt.Sprintf("%+v", s))
	}
	want := []string{
		fmt.Sprintf("%+v", seen{deadline: true, after: context.DeadlineExceeded}),
		fmt.Sprintf("%+v", seen{}),
		fmt.Sprintf("%+v", seen{child: context.Canceled, after: context.Canceled, cause: context.Canceled, afterFuncCalled: true}),
	}
	for _, w := range want {
		found := false
		for _, a := range all {
			found = found || a == w
		}
		if !found {
			t.Errorf("no handler saw %s; they saw %q", w, all)
		}
	}
	if stashed.Err() != context.Canceled || InvocationID(stashed) != 3 {
		t.Errorf("ctx after its invocation was answered: %v %d", stashed.Err(), InvocationID(stashed))
	}
}

func TestInvocationContextMadeLate(t *testing.T) {
	c := &invocation{id: 1}
	c.cancel()
	select {
	case <-c.Done():
	default:
		t.Error("cancelled before first use, not done at first use")
	}
	c = &invocation{id: 2, begin: time.Now().Add(-time.Minute), timeout: time.Second}
	if d, ok := c.Deadline(); !ok || !d.Equal(c.begin.Add(time.Second)) {
		t.Errorf("deadline %v %v", d, ok)
	}
	<-c.Done()
	if !errors.Is(c.Err(), context.DeadlineExceeded) {
		t.Errorf("past its deadline: %v", c.Err())
	}
}

func TestStringsThatAreNotUTF8(t *testing.T) {
	h := func(ctx context.Context, ev *Event) (*Response, error) {
		switch string(ev.Data) {
		case "log":
			Infof(ctx, "bad \xff byte")
			return &Response{ContentType: "a\xffb"}, nil
		case "error":
			return nil, errors.New("bad \xfe")
		}
		return &Response{Emit: []*Event{{Id: "\xff"}}}, nil
	}
	in := fixture(t, "hello_ack")
	in = append(in, invoke(t, 1, "log")...)
	in = append(in, invoke(t, 2, "error")...)
	in = append(in, invoke(t, 3, "emit")...)
	frames, err := serve(t, h, in)
	if err != nil {
		t.Fatal(err)
	}
	got := map[uint64]*sluicepb.Result{}
	var logged string
	for _, f := range frames {
		if r := f.GetResult(); r != nil {
			got[r.GetId()] = r
		}
		if l := f.GetLog(); l != nil {
			logged = l.GetMessage()
		}
	}
	if logged != "bad \uFFFD byte" || got[1].GetContentType() != "a\uFFFDb" || got[2].GetErrorMessage() != "bad \uFFFD" {
		t.Errorf("log %q, results %v", logged, got)
	}
	if r := got[3]; r.GetStatus() != sluicepb.Result_ERROR || !strings.Contains(r.GetErrorMessage(), "result cannot be encoded: ") {
		t.Errorf("emitting an event that is not UTF-8: %v", r)
	}
}

// Frames arriving a byte at a time, and frames larger than the read buffer.
func TestOddReads(t *testing.T) {
	big := bytes.Repeat([]byte("b"), 200<<10)
	in := fixture(t, "hello_ack")
	in = append(in, invoke(t, 1, "small")...)
	in = append(in, invoke(t, 2, string(big))...)
	in = append(in, fixture(t, "invoke")...)
	in = append(in, invoke(t, 3, "small")...)
	in = append(in, fixture(t, "goodbye")...)
	h := func(ctx context.Context, ev *Event) (*Response, error) {
		return &Response{Output: ev.Data, ContentType: fmt.Sprint(len(ev.Headers))}, nil
	}
	for name, r := range map[string]io.Reader{"whole": bytes.NewReader(in), "byte by byte": iotest.OneByteReader(bytes.NewReader(in)),
		"half": iotest.HalfReader(bytes.NewReader(in))} {
		var rec recorder
		if err := Serve(r, &rec, h, Options{}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := map[uint64]string{}
		for _, f := range readAll(t, rec.all()) {
			if res := f.GetResult(); res != nil {
				got[res.GetId()] = string(res.GetOutput()) + "/" + res.GetContentType()
			}
		}
		if len(got) != 4 || got[1] != "small/0" || got[2] != string(big)+"/0" || got[9007199254740993] != "hello/1" || got[3] != "small/0" {
			t.Errorf("%s: %d results", name, len(got))
		}
	}
}

func TestNoopExample(t *testing.T) {
	r := runProc(t, exec.Command(noopBin), fixtures(t, "hello_ack", "invoke", "invoke_fanout", "invoke_poison", "goodbye"))
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	results := 0
	for _, f := range r.frames[1:] {
		res := f.GetResult()
		if res == nil || res.GetStatus() != sluicepb.Result_OK || len(res.GetOutput()) != 0 || res.GetContentType() != "" || len(res.GetEmit()) != 0 {
			t.Errorf("frame %v, want only empty OK Results", f)
		}
		results++
	}
	if results != 3 || r.frames[0].GetHello() == nil {
		t.Errorf("frames %v", r.frames)
	}
}
