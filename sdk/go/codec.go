package sluice

import (
	"encoding/binary"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"sluice.dev/sdk/go/sluicepb"
)

// The hot path's codec: Invoke frames decoded, and Result and Log frames encoded, by
// hand instead of by the generic (reflective) protobuf code, with a few allocations
// instead of a dozen. Each gives exactly what proto.Unmarshal / proto.Marshal give
// (codec_test.go compares them field by field and byte for byte) and declines
// (ok false) whatever it does not handle, which then takes the generic way.

// invokeBlock holds an Invoke and its Event in one allocation.
type invokeBlock struct {
	inv sluicepb.Invoke
	ev  sluicepb.Event
}

// span is a string field's bytes in invokeDecoder.strs.
type span struct{ from, to int }

// invokeDecoder decodes Invoke frames. Its buffers are reused: one goroutine at a time.
type invokeDecoder struct {
	strs  []byte   // every string field's bytes, back to back: one string allocation
	spans []span   // into strs
	exts  [][2]int // per extension: its name's and value's index in spans (-1: empty)
	hdrs  []int    // per header: its name's index in spans (-1: empty)
	hvals [][]byte // per header: its value
}

// decode decodes body when it is a frame holding one Invoke whose fields, and its
// Event's, are all known (schemas/worker.proto, event.proto) and carry their declared
// wire types, the event at most once. ok false: anything else, malformed frames
// included (the generic decoder tells what is wrong with them).
func (d *invokeDecoder) decode(body []byte) (inv *sluicepb.Invoke, ok bool) {
	num, typ, n := protowire.ConsumeTag(body)
	if n < 0 || num != 3 || typ != protowire.BytesType {
		return nil, false
	}
	b, m := protowire.ConsumeBytes(body[n:])
	if m < 0 || n+m != len(body) {
		return nil, false
	}
	blk := &invokeBlock{}
	inv = &blk.inv
	var evBody []byte
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, false
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, false
			}
			inv.Id, b = v, b[n:]
		case num == 3 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, false
			}
			inv.TimeoutMs, b = uint32(v), b[n:]
		case num == 2 && typ == protowire.BytesType && inv.Event == nil:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, false
			}
			evBody, b = v, b[n:]
			inv.Event = &blk.ev
		default:
			return nil, false
		}
	}
	if inv.Event != nil && !d.event(&blk.ev, evBody) {
		return nil, false
	}
	return inv, true
}

func (d *invokeDecoder) event(ev *sluicepb.Event, b []byte) bool {
	d.strs, d.spans, d.exts, d.hdrs, d.hvals = d.strs[:0], d.spans[:0], d.exts[:0], d.hdrs[:0], d.hvals[:0]
	var str [22]int // string fields 1-8, 20, 21: index in spans (-1: empty)
	for i := range str {
		str[i] = -1
	}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		switch typ {
		case protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return false
			}
			b = b[n:]
			switch num {
			case 1, 2, 3, 4, 5, 6, 7, 8, 20, 21:
				if str[num] = d.str(v); str[num] == -2 {
					return false
				}
			case 10:
				ev.Data = cloneBytes(v)
			case 24:
				ev.Key = cloneBytes(v)
			case 9:
				if !d.extension(v) {
					return false
				}
			case 25:
				if !d.header(v) {
					return false
				}
			default:
				return false
			}
		case protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return false
			}
			b = b[n:]
			switch num {
			case 22:
				ev.Partition = int32(v)
			case 23:
				ev.Offset = int64(v)
			case 26:
				ev.BrokerTimestampMs = int64(v)
			case 30:
				ev.Attempt = uint32(v)
			case 31:
				ev.FirstAttemptTimeMs = int64(v)
			default:
				return false
			}
		default:
			return false
		}
	}
	s := string(d.strs)
	if cap(d.strs) > maxKeptBuf {
		d.strs = nil
	}
	get := func(i int) string {
		if i < 0 {
			return ""
		}
		return s[d.spans[i].from:d.spans[i].to]
	}
	ev.Id, ev.Source, ev.SpecVersion, ev.Type = get(str[1]), get(str[2]), get(str[3]), get(str[4])
	ev.DataContentType, ev.DataSchema, ev.Subject, ev.Time = get(str[5]), get(str[6]), get(str[7]), get(str[8])
	ev.Broker, ev.Topic = get(str[20]), get(str[21])
	if len(d.exts) > 0 {
		exts := make([]sluicepb.Extension, len(d.exts))
		ev.Extensions = make([]*sluicepb.Extension, len(d.exts))
		for i, x := range d.exts {
			exts[i].Name, exts[i].Value = get(x[0]), get(x[1])
			ev.Extensions[i] = &exts[i]
		}
	}
	if len(d.hdrs) > 0 {
		hdrs := make([]sluicepb.Header, len(d.hdrs))
		ev.Headers = make([]*sluicepb.Header, len(d.hdrs))
		for i, name := range d.hdrs {
			hdrs[i].Name, hdrs[i].Value = get(name), d.hvals[i]
			ev.Headers[i] = &hdrs[i]
		}
		clear(d.hvals) // keeps no event's data alive
	}
	return true
}

// str keeps a string field's bytes: its index in spans, -1 when empty, -2 when it is
// not UTF-8 (which proto3 refuses).
func (d *invokeDecoder) str(v []byte) int {
	if len(v) == 0 {
		return -1
	}
	if !utf8.Valid(v) {
		return -2
	}
	d.spans = append(d.spans, span{len(d.strs), len(d.strs) + len(v)})
	d.strs = append(d.strs, v...)
	return len(d.spans) - 1
}

// extension decodes an Extension (name 1, value 2: strings).
func (d *invokeDecoder) extension(b []byte) bool {
	x := [2]int{-1, -1}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || (num != 1 && num != 2) || typ != protowire.BytesType {
			return false
		}
		v, m := protowire.ConsumeBytes(b[n:])
		if m < 0 {
			return false
		}
		b = b[n+m:]
		if x[num-1] = d.str(v); x[num-1] == -2 {
			return false
		}
	}
	d.exts = append(d.exts, x)
	return true
}

// header decodes a Header (name 1: string, value 2: bytes).
func (d *invokeDecoder) header(b []byte) bool {
	name := -1
	var value []byte
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || (num != 1 && num != 2) || typ != protowire.BytesType {
			return false
		}
		v, m := protowire.ConsumeBytes(b[n:])
		if m < 0 {
			return false
		}
		b = b[n+m:]
		if num == 1 {
			if name = d.str(v); name == -2 {
				return false
			}
		} else {
			value = cloneBytes(v)
		}
	}
	d.hdrs = append(d.hdrs, name)
	d.hvals = append(d.hvals, value)
	return true
}

// cloneBytes copies a proto3 bytes field as the generic decoder does (nil when empty).
func cloneBytes(v []byte) []byte {
	if len(v) == 0 {
		return nil
	}
	return append([]byte(nil), v...)
}

// appendResultFrame appends the Result frame of r (length prefix included), unless r
// emits events (ok false: the generic encoder writes those). Strings must be UTF-8.
func appendResultFrame(dst []byte, r *sluicepb.Result) (out []byte, ok bool) {
	if len(r.Emit) > 0 {
		return dst, false
	}
	size := varintField(1, r.Id) + varintField(2, uint64(int64(r.Status))) + bytesField(3, len(r.Output)) +
		bytesField(4, len(r.ContentType)) + bytesField(5, len(r.ErrorMessage)) + varintField(6, uint64(r.RetryAfterMs))
	dst = frameHead(dst, 4, size)
	dst = appendVarintField(dst, 1, r.Id)
	dst = appendVarintField(dst, 2, uint64(int64(r.Status)))
	dst = appendBytesField(dst, 3, r.Output)
	dst = appendStringField(dst, 4, r.ContentType)
	dst = appendStringField(dst, 5, r.ErrorMessage)
	dst = appendVarintField(dst, 6, uint64(r.RetryAfterMs))
	return dst, true
}

// appendLogFrame appends the Log frame {id, level, msg} (length prefix included);
// msg must be UTF-8.
func appendLogFrame(dst []byte, id uint64, level Level, msg string) []byte {
	size := varintField(1, id) + varintField(2, uint64(int64(level))) + bytesField(3, len(msg))
	dst = frameHead(dst, 6, size)
	dst = appendVarintField(dst, 1, id)
	dst = appendVarintField(dst, 2, uint64(int64(level)))
	return appendStringField(dst, 3, msg)
}

// frameHead appends the length prefix and the Frame's field kind (a message of size
// bytes).
func frameHead(dst []byte, kind protowire.Number, size int) []byte {
	var head [4]byte
	binary.BigEndian.PutUint32(head[:], uint32(protowire.SizeTag(kind)+protowire.SizeBytes(size)))
	dst = append(dst, head[:]...)
	dst = protowire.AppendTag(dst, kind, protowire.BytesType)
	return protowire.AppendVarint(dst, uint64(size))
}

// proto3 leaves zero values out.
func varintField(num protowire.Number, v uint64) int {
	if v == 0 {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeVarint(v)
}

func bytesField(num protowire.Number, n int) int {
	if n == 0 {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeBytes(n)
}

func appendVarintField(dst []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return dst
	}
	return protowire.AppendVarint(protowire.AppendTag(dst, num, protowire.VarintType), v)
}

func appendBytesField(dst []byte, num protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return dst
	}
	return protowire.AppendBytes(protowire.AppendTag(dst, num, protowire.BytesType), v)
}

func appendStringField(dst []byte, num protowire.Number, v string) []byte {
	if len(v) == 0 {
		return dst
	}
	return protowire.AppendString(protowire.AppendTag(dst, num, protowire.BytesType), v)
}

// validUTF8 is s with each invalid UTF-8 byte sequence replaced by U+FFFD (proto3
// strings must be UTF-8; the Python and Node SDKs cannot send anything else either).
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
