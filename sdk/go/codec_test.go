package sluice

import (
	"bytes"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"sluice.dev/sdk/go/sluicepb"
)

// sameExported compares the exported fields of two generated messages, recursively
// (reflect.DeepEqual on them: a nil and an empty []byte differ), ignoring the
// generated code's internal state.
func sameExported(a, b reflect.Value) bool {
	if a.Kind() != b.Kind() {
		return false
	}
	switch a.Kind() {
	case reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return sameExported(a.Elem(), b.Elem())
	case reflect.Struct:
		for i := 0; i < a.NumField(); i++ {
			if a.Type().Field(i).IsExported() && !sameExported(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Slice:
		if a.IsNil() != b.IsNil() || a.Len() != b.Len() {
			return false
		}
		if a.Type().Elem().Kind() == reflect.Uint8 {
			return bytes.Equal(a.Bytes(), b.Bytes())
		}
		for i := 0; i < a.Len(); i++ {
			if !sameExported(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a.Interface(), b.Interface())
}

// checkDecode decodes body with the hand decoder and the generic one: whenever the
// hand decoder accepts it, both must agree exactly. It returns whether it accepted.
func checkDecode(t *testing.T, d *invokeDecoder, body []byte) bool {
	t.Helper()
	fast, ok := d.decode(body)
	f := &sluicepb.Frame{}
	err := proto.Unmarshal(body, f)
	if !ok {
		return false
	}
	if err != nil || f.GetInvoke() == nil {
		t.Fatalf("hand decoder accepted %x, the generic one: %v %v", body, err, f)
	}
	if !proto.Equal(fast, f.GetInvoke()) || !sameExported(reflect.ValueOf(fast), reflect.ValueOf(f.GetInvoke())) {
		t.Fatalf("%x: hand decoder %v, generic %v", body, fast, f.GetInvoke())
	}
	return true
}

func randString(r *rand.Rand) string {
	pool := []string{"", "a", "ev-1", "héllo ✓ 日本", "/sluice/function/x", "text/plain", "\x00z", "2026-01-02T03:04:05Z"}
	return pool[r.Intn(len(pool))]
}

func randBytes(r *rand.Rand) []byte {
	switch r.Intn(4) {
	case 0:
		return nil
	case 1:
		return []byte{}
	}
	b := make([]byte, r.Intn(300))
	r.Read(b)
	return b
}

func randEvent(r *rand.Rand) *Event {
	ev := &Event{Id: randString(r), Source: randString(r), SpecVersion: randString(r), Type: randString(r),
		DataContentType: randString(r), DataSchema: randString(r), Subject: randString(r), Time: randString(r),
		Data: randBytes(r), Broker: randString(r), Topic: randString(r), Partition: int32(r.Uint32()),
		Offset: int64(r.Uint64()), Key: randBytes(r), BrokerTimestampMs: int64(r.Uint64() >> uint(r.Intn(64))),
		Attempt: r.Uint32() >> uint(r.Intn(32)), FirstAttemptTimeMs: int64(r.Uint64())}
	for i := r.Intn(4); i > 0; i-- {
		ev.Extensions = append(ev.Extensions, &sluicepb.Extension{Name: randString(r), Value: randString(r)})
	}
	for i := r.Intn(4); i > 0; i-- {
		ev.Headers = append(ev.Headers, &sluicepb.Header{Name: randString(r), Value: randBytes(r)})
	}
	if r.Intn(3) == 0 { // zero values
		ev.Partition, ev.Offset, ev.Attempt = 0, 0, 0
	}
	return ev
}

func randInvokeBody(t *testing.T, r *rand.Rand) []byte {
	inv := &sluicepb.Invoke{Id: r.Uint64() >> uint(r.Intn(64)), TimeoutMs: r.Uint32() >> uint(r.Intn(32))}
	if r.Intn(8) != 0 {
		inv.Event = randEvent(r)
	}
	b, err := proto.Marshal(&sluicepb.Frame{Kind: &sluicepb.Frame_Invoke{Invoke: inv}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestInvokeDecoderMatchesProtobuf(t *testing.T) {
	var d invokeDecoder
	for _, name := range []string{"invoke", "invoke_fanout", "invoke_poison"} {
		if !checkDecode(t, &d, fixture(t, name)[4:]) {
			t.Errorf("%s: the hand decoder declined it", name)
		}
	}
	// What proto.Marshal never writes: empty strings and bytes on the wire (bytes stay
	// nil), fields repeated (the last one counts), a field's varint longer than needed.
	var ev []byte
	for _, num := range []protowire.Number{1, 2, 3, 4, 5, 6, 7, 8, 10, 20, 21, 24} {
		ev = protowire.AppendBytes(protowire.AppendTag(ev, num, protowire.BytesType), nil)
	}
	header := protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), nil)
	header = protowire.AppendString(protowire.AppendTag(header, 1, protowire.BytesType), "n")
	ev = protowire.AppendBytes(protowire.AppendTag(ev, 25, protowire.BytesType), header)
	ev = protowire.AppendBytes(protowire.AppendTag(ev, 25, protowire.BytesType), nil)
	ev = protowire.AppendBytes(protowire.AppendTag(ev, 9, protowire.BytesType), nil)
	ev = protowire.AppendString(protowire.AppendTag(ev, 1, protowire.BytesType), "first")
	ev = protowire.AppendString(protowire.AppendTag(ev, 1, protowire.BytesType), "last")
	ev = protowire.AppendBytes(protowire.AppendTag(ev, 10, protowire.BytesType), []byte("x"))
	ev = protowire.AppendBytes(protowire.AppendTag(ev, 10, protowire.BytesType), nil)
	ev = protowire.AppendVarint(protowire.AppendTag(ev, 22, protowire.VarintType), 1<<40|7) // int32: truncated
	ev = protowire.AppendTag(ev, 30, protowire.VarintType)
	ev = append(ev, 0x85, 0x80, 0x80, 0) // 5, in four bytes
	inv := protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 9)
	inv = protowire.AppendVarint(protowire.AppendTag(inv, 1, protowire.VarintType), 10)
	inv = protowire.AppendVarint(protowire.AppendTag(inv, 3, protowire.VarintType), 1<<33|5)
	inv = protowire.AppendBytes(protowire.AppendTag(inv, 2, protowire.BytesType), ev)
	body := protowire.AppendBytes(protowire.AppendTag(nil, 3, protowire.BytesType), inv)
	if !checkDecode(t, &d, body) {
		t.Error("declined an unusual but known Invoke")
	}
	if got, _ := d.decode(body); got.Id != 10 || got.Event.Id != "last" || got.Event.Data != nil || got.Event.Headers[0].Value != nil ||
		got.Event.Headers[1].Name != "" || got.Event.Attempt != 5 || got.Event.Partition != 7 || got.TimeoutMs != 5 {
		t.Errorf("decoded %v", got)
	}

	r := rand.New(rand.NewSource(1))
	for i := 0; i < 3000; i++ {
		if body := randInvokeBody(t, r); !checkDecode(t, &d, body) {
			t.Fatalf("declined a plain Invoke %x", body)
		}
	}
}

// Mangled frames: whatever the hand decoder accepts, protobuf decodes the same way.
func TestInvokeDecoderOnMangledFrames(t *testing.T) {
	var d invokeDecoder
	r := rand.New(rand.NewSource(2))
	accepted := 0
	for i := 0; i < 20000; i++ {
		body := randInvokeBody(t, r)
		switch r.Intn(4) {
		case 0:
			body = body[:r.Intn(len(body)+1)]
		case 1:
			body[r.Intn(len(body))] ^= byte(1 << r.Intn(8))
		case 2:
			body[r.Intn(len(body))] = byte(r.Intn(256))
		case 3:
			at := r.Intn(len(body) + 1)
			body = append(body[:at:at], append([]byte{byte(r.Intn(256))}, body[at:]...)...)
		}
		if checkDecode(t, &d, body) {
			accepted++
		}
	}
	if accepted == 0 {
		t.Error("accepted none")
	}
}

// What the hand decoder leaves to protobuf: other kinds, unknown fields, a repeated
// event, a string that is not UTF-8, bad frames.
func TestInvokeDecoderDeclines(t *testing.T) {
	var d invokeDecoder
	inv := fixture(t, "invoke")[4:]
	invBody, _ := protowire.ConsumeBytes(inv[1:])
	evTag := protowire.AppendTag(nil, 2, protowire.BytesType)
	ev := &Event{Id: "x"}
	evBytes, _ := proto.Marshal(ev)
	evBytes = protowire.AppendVarint(protowire.AppendTag(evBytes, 99, protowire.VarintType), 7)
	withUnknown := protowire.AppendBytes(append([]byte(nil), evTag...), evBytes)
	twoEvents := append(append([]byte(nil), invBody...), protowire.AppendBytes(append([]byte(nil), evTag...), evBytes[:3])...)
	badUTF8 := protowire.AppendBytes(append([]byte(nil), evTag...), protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "\xff"))
	frame := func(invoke []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, 3, protowire.BytesType), invoke)
	}
	for name, body := range map[string][]byte{
		"cancel":           fixture(t, "cancel")[4:],
		"goodbye":          fixture(t, "goodbye")[4:],
		"garbage":          fixture(t, "bad_garbage")[4:],
		"empty":            {},
		"unknown in event": frame(withUnknown),
		"two events":       frame(twoEvents),
		"not UTF-8":        frame(badUTF8),
		"trailing field":   append(append([]byte(nil), inv...), fixture(t, "cancel")[4:]...),
	} {
		if _, ok := d.decode(body); ok {
			t.Errorf("%s: accepted", name)
		}
		checkDecode(t, &d, body)
	}
}

// A field added to schemas/ must be added to the hand codec too (until then an
// Invoke carrying it is declined, and a Result field would be lost).
func TestHandCodecKnowsEveryField(t *testing.T) {
	var set func(m protoreflect.Message)
	set = func(m protoreflect.Message) {
		fields := m.Descriptor().Fields()
		for i := 0; i < fields.Len(); i++ {
			fd := fields.Get(i)
			var v protoreflect.Value
			switch fd.Kind() {
			case protoreflect.StringKind:
				v = protoreflect.ValueOfString("s")
			case protoreflect.BytesKind:
				v = protoreflect.ValueOfBytes([]byte{1})
			case protoreflect.Int32Kind:
				v = protoreflect.ValueOfInt32(-3)
			case protoreflect.Int64Kind:
				v = protoreflect.ValueOfInt64(-4)
			case protoreflect.Uint32Kind:
				v = protoreflect.ValueOfUint32(5)
			case protoreflect.Uint64Kind:
				v = protoreflect.ValueOfUint64(6)
			case protoreflect.EnumKind:
				v = protoreflect.ValueOfEnum(2)
			case protoreflect.MessageKind:
				if fd.IsList() {
					if fd.Message().FullName() == "sluice.v1.Event" {
						continue // Result.emit takes the generic way
					}
					l := m.Mutable(fd).List()
					e := l.NewElement()
					set(e.Message())
					l.Append(e)
					continue
				}
				continue // Invoke.event: filled below
			default:
				t.Fatalf("%s: a field kind the hand codec does not know", fd.FullName())
			}
			if fd.IsList() {
				t.Fatalf("%s: a repeated scalar the hand codec does not know", fd.FullName())
			}
			m.Set(fd, v)
		}
	}
	ev := &Event{}
	set(ev.ProtoReflect())
	inv := &sluicepb.Invoke{Event: ev}
	set(inv.ProtoReflect())
	body, _ := proto.Marshal(&sluicepb.Frame{Kind: &sluicepb.Frame_Invoke{Invoke: inv}})
	var d invokeDecoder
	if !checkDecode(t, &d, body) {
		t.Errorf("an Invoke with every field set is declined: does invokeDecoder know every field of schemas/?")
	}
	res := &sluicepb.Result{}
	set(res.ProtoReflect())
	if got, ok := appendResultFrame(nil, res); !ok || !bytes.Equal(got, encode(t, &sluicepb.Frame{Kind: &sluicepb.Frame_Result{Result: res}})) {
		t.Errorf("Result with every field set: hand encoder %x: does appendResultFrame know every field?", got)
	}
	log := &sluicepb.Log{}
	set(log.ProtoReflect())
	if got := appendLogFrame(nil, log.Id, log.Level, log.Message); !bytes.Equal(got, encode(t, &sluicepb.Frame{Kind: &sluicepb.Frame_Log{Log: log}})) {
		t.Errorf("Log with every field set: hand encoder %x: does appendLogFrame know every field?", got)
	}
}

func TestResultAndLogEncodersAreByteExact(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	statuses := []sluicepb.Result_Status{0, 1, 2, 3, -1, 100}
	prefix := []byte("held")
	for i := 0; i < 3000; i++ {
		res := &sluicepb.Result{Id: r.Uint64() >> uint(r.Intn(64)), Status: statuses[r.Intn(len(statuses))],
			Output: randBytes(r), ContentType: randString(r), ErrorMessage: randString(r), RetryAfterMs: r.Uint32() >> uint(r.Intn(32))}
		want := append(append([]byte(nil), prefix...), encode(t, &sluicepb.Frame{Kind: &sluicepb.Frame_Result{Result: res}})...)
		if got, ok := appendResultFrame(append([]byte(nil), prefix...), res); !ok || !bytes.Equal(got, want) {
			t.Fatalf("%v: %x, want %x", res, got, want)
		}
		log := &sluicepb.Log{Id: r.Uint64() >> uint(r.Intn(64)), Level: Level(r.Intn(7) - 1), Message: randString(r)}
		want = append(append([]byte(nil), prefix...), encode(t, &sluicepb.Frame{Kind: &sluicepb.Frame_Log{Log: log}})...)
		if got := appendLogFrame(append([]byte(nil), prefix...), log.Id, log.Level, log.Message); !bytes.Equal(got, want) {
			t.Fatalf("%v: %x, want %x", log, got, want)
		}
	}
	for _, name := range []string{"result_echo", "result_poison", "result_error"} {
		f, err := ReadFrame(bytes.NewReader(fixture(t, name)))
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := appendResultFrame(nil, f.GetResult()); !ok || !bytes.Equal(got, fixture(t, name)) {
			t.Errorf("%s: %x", name, got)
		}
	}
	if _, ok := appendResultFrame(nil, &sluicepb.Result{Emit: []*Event{{}}}); ok {
		t.Error("a Result with emitted events is for the generic encoder")
	}
}

func FuzzInvokeDecoder(f *testing.F) {
	for _, name := range []string{"invoke", "invoke_fanout", "invoke_poison", "cancel", "bad_garbage", "bad_no_kind"} {
		b, err := os.ReadFile(filepath.Join(testdata, name+".bin"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[4:])
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var d invokeDecoder
		checkDecode(t, &d, body)
	})
}
