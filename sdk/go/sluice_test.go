package sluice

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"sluice.dev/sdk/go/sluicepb"
)

var testdata = filepath.Join("..", "testdata")

var echoBin, noopBin string

func TestMain(m *testing.M) {
	switch os.Getenv("SLUICE_GO_TEST_HELPER") {
	case "print":
		Run(func(ctx context.Context, ev *Event) (*Response, error) {
			fmt.Println("printed by", ev.Id)        // fd 1 is stderr now
			os.Stdout.WriteString("stdout write\n") // likewise
			Infof(ctx, "logged by %s", ev.Id)
			return &Response{Output: []byte("ok")}, nil
		})
	}
	dir, err := os.MkdirTemp("", "sluice-go-test")
	if err != nil {
		panic(err)
	}
	echoBin, noopBin = filepath.Join(dir, "echo"), filepath.Join(dir, "noop")
	for bin, pkg := range map[string]string{echoBin: "./examples/echo", noopBin: "./examples/noop"} {
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n%s", pkg, err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdata, name+".bin"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fixtures(t *testing.T, names ...string) []byte {
	var out []byte
	for _, n := range names {
		out = append(out, fixture(t, n)...)
	}
	return out
}

func encode(t *testing.T, f *sluicepb.Frame) []byte {
	t.Helper()
	b, err := EncodeFrame(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func invoke(t *testing.T, id uint64, data string) []byte {
	return encode(t, &sluicepb.Frame{Kind: &sluicepb.Frame_Invoke{Invoke: &sluicepb.Invoke{
		Id: id, Event: &Event{Id: fmt.Sprintf("ev-%d", id), Data: []byte(data)}}}})
}

func cancelFrame(t *testing.T, id uint64) []byte {
	return encode(t, &sluicepb.Frame{Kind: &sluicepb.Frame_Cancel{Cancel: &sluicepb.Cancel{Id: id}}})
}

func readAll(t *testing.T, data []byte) []*sluicepb.Frame {
	t.Helper()
	var frames []*sluicepb.Frame
	r := bytes.NewReader(data)
	for {
		f, err := ReadFrame(r)
		if err == io.EOF {
			return frames
		}
		if err != nil {
			t.Fatalf("output stream: %v", err)
		}
		frames = append(frames, f)
	}
}

func resultBytes(t *testing.T, frames []*sluicepb.Frame) []string {
	var out []string
	for _, f := range frames {
		if f.GetResult() != nil {
			out = append(out, string(encode(t, f)))
		}
	}
	sort.Strings(out)
	return out
}

func TestFixturesRoundTripByteExact(t *testing.T) {
	for _, name := range []string{"hello", "hello_ack", "hello_ack_v2", "goodbye", "goodbye_refused", "invoke",
		"invoke_fanout", "invoke_poison", "result_echo", "result_fanout", "result_poison", "result_error", "log", "cancel"} {
		data := fixture(t, name)
		f, err := ReadFrame(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := encode(t, f); !bytes.Equal(got, data) {
			t.Errorf("%s: re-encoded %x, fixture %x", name, got, data)
		}
	}
}

func TestInvokeFixtureFields(t *testing.T) {
	f, err := ReadFrame(bytes.NewReader(fixture(t, "invoke")))
	if err != nil {
		t.Fatal(err)
	}
	inv := f.GetInvoke()
	ev := inv.GetEvent()
	if inv.GetId() != 9007199254740993 || inv.GetTimeoutMs() != 30000 {
		t.Errorf("invoke id/timeout: %d %d", inv.GetId(), inv.GetTimeoutMs())
	}
	want := &Event{Id: "ev-1", Source: "/sdk/testdata", SpecVersion: "1.0", Type: "com.example.test",
		DataContentType: "text/plain", DataSchema: "https://example.com/schema", Subject: "subj", Time: "2026-01-02T03:04:05Z",
		Extensions: []*sluicepb.Extension{{Name: "traceparent", Value: "00-abc-def-01"}, {Name: "tenant", Value: "t1"}},
		Data:       []byte("hello"), Broker: "local", Topic: "in", Partition: 3, Offset: 1234567890123, Key: []byte("k\x00\xff"),
		Headers:           []*sluicepb.Header{{Name: "x-h", Value: []byte("v\x01")}},
		BrokerTimestampMs: 1767323045000, Attempt: 2, FirstAttemptTimeMs: 1767323046000}
	if !proto.Equal(ev, want) {
		t.Errorf("event = %v, want %v", ev, want)
	}
}

func TestFramesBuiltBySDKAreByteExact(t *testing.T) {
	log := &sluicepb.Frame{Kind: &sluicepb.Frame_Log{Log: &sluicepb.Log{Id: 9007199254740993, Level: Warn, Message: "héllo ✓ 日本"}}}
	if got := encode(t, log); !bytes.Equal(got, fixture(t, "log")) {
		t.Errorf("log frame %x", got)
	}
	status, after := classify(RetryAfter(1500*time.Millisecond, errors.New("boom")))
	res := &sluicepb.Frame{Kind: &sluicepb.Frame_Result{Result: &sluicepb.Result{Id: 4, Status: status, ErrorMessage: "boom", RetryAfterMs: after}}}
	if got := encode(t, res); !bytes.Equal(got, fixture(t, "result_error")) {
		t.Errorf("result frame %x", got)
	}
}

func TestBadFramesAreClearErrors(t *testing.T) {
	for name, want := range map[string]string{
		"bad_oversize":  "exceeds the 67108864-byte limit",
		"bad_garbage":   "does not parse",
		"bad_no_kind":   "no known kind",
		"bad_truncated": "ended inside a frame",
	} {
		_, err := ReadFrame(bytes.NewReader(fixture(t, name)))
		var pe *ProtocolError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want a ProtocolError containing %q", name, err, want)
		}
	}
	if _, err := ReadFrame(bytes.NewReader([]byte{0, 0})); err == nil || !strings.Contains(err.Error(), "inside a frame header") {
		t.Errorf("short header: %v", err)
	}
	if _, err := ReadFrame(bytes.NewReader(nil)); err != io.EOF {
		t.Errorf("empty stream: %v, want io.EOF", err)
	}
}

type procRun struct {
	code   int
	frames []*sluicepb.Frame
	stderr string
}

func runProc(t *testing.T, cmd *exec.Cmd, input []byte) procRun {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(input), &out, &errb
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("worker hung; stderr: %s", errb.String())
	}
	return procRun{code: cmd.ProcessState.ExitCode(), frames: readAll(t, out.Bytes()), stderr: errb.String()}
}

func TestEchoExampleSessionIsByteExact(t *testing.T) {
	r := runProc(t, exec.Command(echoBin), fixtures(t, "hello_ack", "invoke", "invoke_fanout", "invoke_poison", "goodbye"))
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	h := r.frames[0].GetHello()
	if h == nil || h.GetProtocolVersion() != 1 || !strings.HasPrefix(h.GetSdk(), "sluice-go/") || h.GetPid() == 0 {
		t.Fatalf("first frame %v, want Hello", r.frames[0])
	}
	want := []string{string(fixture(t, "result_echo")), string(fixture(t, "result_fanout")), string(fixture(t, "result_poison"))}
	sort.Strings(want)
	if got := resultBytes(t, r.frames); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("results %q, want %q", got, want)
	}
	logs := map[string]uint64{}
	for _, f := range r.frames {
		if l := f.GetLog(); l != nil {
			logs[l.GetMessage()] = l.GetId()
		}
	}
	if logs["echo ev-1"] != 9007199254740993 || logs["echo ev-2"] != 2 {
		t.Errorf("log frames %v", logs)
	}
}

func TestProtocolErrorsExitNonZero(t *testing.T) {
	cases := []struct {
		input []byte
		want  string
	}{
		{fixture(t, "hello_ack_v2"), "sluice speaks protocol version 2"},
		{fixture(t, "goodbye_refused"), "refused the handshake: protocol version 7 is not supported"},
		{nil, "closed the stream before answering Hello"},
		{fixture(t, "invoke"), "expected HelloAck as sluice's first frame, got invoke"},
		{fixture(t, "bad_garbage"), "does not parse"},
		{fixtures(t, "hello_ack", "bad_garbage"), "does not parse"},
		{fixtures(t, "hello_ack", "bad_oversize"), "exceeds the 67108864-byte limit"},
		{fixtures(t, "hello_ack", "bad_truncated"), "ended inside a frame"},
		{fixtures(t, "hello_ack", "bad_no_kind"), "no known kind"},
		{fixtures(t, "hello_ack", "result_echo"), "unexpected result frame"},
		{fixtures(t, "hello_ack", "hello_ack"), "unexpected hello_ack frame"},
	}
	for _, c := range cases {
		r := runProc(t, exec.Command(echoBin), c.input)
		if r.code != 2 || !strings.Contains(r.stderr, "sluice-sdk: protocol error: ") || !strings.Contains(r.stderr, c.want) {
			t.Errorf("want exit 2 and %q; got exit %d, stderr %q", c.want, r.code, r.stderr)
		}
		if len(r.frames) == 0 || r.frames[0].GetHello() == nil {
			t.Errorf("%q: no Hello first", c.want)
		}
	}
}

func TestATerminalOnStdoutIsRefused(t *testing.T) {
	cmd := exec.Command("script", "-qec", echoBin, "/dev/null")
	out, _ := cmd.Output()
	if cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), "sluice-sdk: stdout is a terminal") {
		t.Errorf("exit %d, output %q", cmd.ProcessState.ExitCode(), out)
	}
}

func TestPrintsDoNotCorruptTheStream(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SLUICE_GO_TEST_HELPER=print")
	r := runProc(t, cmd, append(append(fixture(t, "hello_ack"), invoke(t, 11, "a")...), fixture(t, "goodbye")...))
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "printed by ev-11") || !strings.Contains(r.stderr, "stdout write") {
		t.Errorf("prints not on stderr: %q", r.stderr)
	}
	var sawLog, sawResult bool
	for _, f := range r.frames {
		if l := f.GetLog(); l != nil && l.GetId() == 11 && l.GetMessage() == "logged by ev-11" && l.GetLevel() == Info {
			sawLog = true
		}
		if res := f.GetResult(); res != nil && string(res.GetOutput()) == "ok" {
			sawResult = true
		}
	}
	if !sawLog || !sawResult {
		t.Errorf("frames %v", r.frames)
	}
}

// serve runs Serve in-process on input and returns the frames it wrote.
func serve(t *testing.T, h Handler, input []byte) ([]*sluicepb.Frame, error) {
	t.Helper()
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- Serve(bytes.NewReader(input), &out, h, Options{MaxInflight: 64}) }()
	select {
	case err := <-done:
		return readAll(t, out.Bytes()), err
	case <-time.After(60 * time.Second):
		t.Fatal("Serve hung")
	}
	return nil, nil
}

func TestErrorsRejectsPanics(t *testing.T) {
	h := func(ctx context.Context, ev *Event) (*Response, error) {
		switch string(ev.Data) {
		case "retry":
			return nil, RetryAfter(1500*time.Millisecond, errors.New("boom"))
		case "fail":
			return nil, errors.New("plain failure")
		case "reject":
			return nil, fmt.Errorf("wrapped: %w", Rejectf("never"))
		case "panic":
			panic("kaboom")
		case "huge":
			return &Response{Output: make([]byte, MaxFrameBytes+1)}, nil
		}
		return nil, nil
	}
	var in []byte
	in = append(in, fixture(t, "hello_ack")...)
	in = append(in, invoke(t, 4, "retry")...)
	in = append(in, invoke(t, 5, "fail")...)
	in = append(in, invoke(t, 6, "reject")...)
	in = append(in, invoke(t, 7, "panic")...)
	in = append(in, invoke(t, 8, "nil")...)
	in = append(in, invoke(t, 9, "huge")...)
	frames, err := serve(t, h, in)
	if err != nil {
		t.Fatal(err)
	}
	results := map[uint64]*sluicepb.Result{}
	var panicLogged bool
	for _, f := range frames {
		if r := f.GetResult(); r != nil {
			results[r.GetId()] = r
		}
		if l := f.GetLog(); l != nil && l.GetId() == 7 && strings.Contains(l.GetMessage(), "panic: kaboom") && l.GetLevel() == Error {
			panicLogged = true
		}
	}
	if got := encode(t, &sluicepb.Frame{Kind: &sluicepb.Frame_Result{Result: results[4]}}); !bytes.Equal(got, fixture(t, "result_error")) {
		t.Errorf("retry result %v", results[4])
	}
	if r := results[5]; r.GetStatus() != sluicepb.Result_ERROR || r.GetErrorMessage() != "plain failure" {
		t.Errorf("fail result %v", r)
	}
	if r := results[6]; r.GetStatus() != sluicepb.Result_REJECTED || r.GetErrorMessage() != "wrapped: never" {
		t.Errorf("reject result %v", r)
	}
	if r := results[7]; r.GetStatus() != sluicepb.Result_ERROR || r.GetErrorMessage() != "panic: kaboom" || !panicLogged {
		t.Errorf("panic result %v (logged %v)", r, panicLogged)
	}
	if r := results[8]; r.GetStatus() != sluicepb.Result_OK || len(r.GetOutput()) != 0 {
		t.Errorf("nil result %v", r)
	}
	if r := results[9]; r.GetStatus() != sluicepb.Result_ERROR || !strings.Contains(r.GetErrorMessage(), "result too large: protocol error: frame of 67108879 bytes exceeds") {
		t.Errorf("huge result %v", r)
	}
}

func TestManyInvocationsInFlight(t *testing.T) {
	const n = 50
	var wg sync.WaitGroup
	wg.Add(n)
	h := func(ctx context.Context, ev *Event) (*Response, error) {
		wg.Done()
		wg.Wait() // returns only when all n are in flight at once
		return &Response{Output: ev.Data}, nil
	}
	in := fixture(t, "hello_ack")
	for i := uint64(1); i <= n; i++ {
		in = append(in, invoke(t, i, fmt.Sprintf("d%d", i))...)
	}
	frames, err := serve(t, h, in)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint64]bool{}
	for _, f := range frames {
		if r := f.GetResult(); r != nil {
			if string(r.GetOutput()) != fmt.Sprintf("d%d", r.GetId()) || seen[r.GetId()] {
				t.Errorf("result %v", r)
			}
			seen[r.GetId()] = true
		}
	}
	if len(seen) != n {
		t.Errorf("%d results, want %d", len(seen), n)
	}
	if h := frames[0].GetHello(); h.GetMaxInflight() != 64 {
		t.Errorf("hello %v", h)
	}
}

func TestCancelledInvocationStopsAndIsAnswered(t *testing.T) {
	h := func(ctx context.Context, ev *Event) (*Response, error) {
		if string(ev.Data) == "hang" {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return &Response{Output: ev.Data}, nil
	}
	in := fixture(t, "hello_ack")
	in = append(in, invoke(t, 1, "hang")...)
	in = append(in, invoke(t, 2, "fine")...)
	in = append(in, cancelFrame(t, 1)...)
	in = append(in, fixture(t, "goodbye")...)
	frames, err := serve(t, h, in)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range frames {
		if r := f.GetResult(); r != nil {
			got = append(got, fmt.Sprintf("%d:%s%s", r.GetId(), r.GetOutput(), r.GetErrorMessage()))
		}
	}
	sort.Strings(got)
	if fmt.Sprint(got) != "[1:context canceled 2:fine]" {
		t.Errorf("results %v", got)
	}
}

func TestDuplicateIDIsAProtocolError(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	h := func(ctx context.Context, ev *Event) (*Response, error) { <-block; return nil, nil }
	in := append(append(fixture(t, "hello_ack"), invoke(t, 7, "a")...), invoke(t, 7, "b")...)
	_, err := serve(t, h, in)
	if err == nil || !strings.Contains(err.Error(), "Invoke id 7 is already in flight") {
		t.Errorf("got %v", err)
	}
}

func TestNewEventAndTimeoutDeadline(t *testing.T) {
	var deadlineOK bool
	var emitted *Event
	h := func(ctx context.Context, ev *Event) (*Response, error) {
		d, ok := ctx.Deadline()
		deadlineOK = ok && time.Until(d) > 0 && time.Until(d) <= time.Second
		emitted = NewEvent(ctx, "t.x", []byte("d"))
		return nil, nil
	}
	in := append(append(fixture(t, "hello_ack"), fixture(t, "invoke_fanout")...), fixture(t, "goodbye")...)
	if _, err := serve(t, h, in); err != nil {
		t.Fatal(err)
	}
	if !deadlineOK {
		t.Error("ctx has no deadline from timeout_ms")
	}
	if emitted.GetSource() != "/sluice/function/echo" || emitted.GetSpecVersion() != "1.0" || len(emitted.GetId()) != 36 {
		t.Errorf("NewEvent %v", emitted)
	}
}
