package sluice

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/proto"

	"sluice.dev/sdk/go/sluicepb"
)

// ProtocolVersion is the frame protocol version this SDK speaks.
const ProtocolVersion = 1

// MaxFrameBytes is the largest frame body protocol v1 allows.
const MaxFrameBytes = 64 << 20

// ProtocolError is a frame that breaks protocol v1 (bad length, does not parse,
// unexpected kind) or a refused handshake.
type ProtocolError struct{ Msg string }

func (e *ProtocolError) Error() string { return "protocol error: " + e.Msg }

func protocolErrorf(format string, args ...any) error {
	return &ProtocolError{Msg: fmt.Sprintf(format, args...)}
}

// EncodeFrame serializes a frame with its 4-byte big-endian length prefix.
func EncodeFrame(f *sluicepb.Frame) ([]byte, error) {
	out, err := appendFrame(nil, f)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// appendFrame appends f with its length prefix to dst, serializing it in place (no
// copy). It returns the grown slice even on error, so that the caller can reuse it.
func appendFrame(dst []byte, f *sluicepb.Frame) ([]byte, error) {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	out, err := proto.MarshalOptions{}.MarshalAppend(dst, f)
	if err != nil {
		return dst[:start], err
	}
	n := len(out) - start - 4
	if n > MaxFrameBytes {
		return out[:start], protocolErrorf("frame of %d bytes exceeds the %d-byte limit", n, MaxFrameBytes)
	}
	binary.BigEndian.PutUint32(out[start:], uint32(n))
	return out, nil
}

// DecodeFrame parses one frame body (without its length prefix).
func DecodeFrame(body []byte) (*sluicepb.Frame, error) {
	f := &sluicepb.Frame{}
	if err := proto.Unmarshal(body, f); err != nil {
		return nil, protocolErrorf("frame of %d bytes does not parse as sluice.v1.Frame: %v", len(body), err)
	}
	if f.Kind == nil {
		return nil, protocolErrorf("frame of %d bytes carries no known kind (not a sluice.v1.Frame?)", len(body))
	}
	return f, nil
}

// ReadFrame reads one frame; io.EOF at a clean end of stream.
func ReadFrame(r io.Reader) (*sluicepb.Frame, error) {
	var head [4]byte
	n, err := io.ReadFull(r, head[:])
	if err == io.EOF {
		return nil, io.EOF
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, headerCut(n)
	}
	if err != nil {
		return nil, err
	}
	size, err := frameSize(head[:])
	if err != nil {
		return nil, err
	}
	body := make([]byte, size)
	n, err = io.ReadFull(r, body)
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, bodyCut(n, size)
	}
	if err != nil {
		return nil, err
	}
	return DecodeFrame(body)
}

func headerCut(n int) error {
	return protocolErrorf("stream ended inside a frame header (%d of 4 bytes)", n)
}

func bodyCut(n, size int) error {
	return protocolErrorf("stream ended inside a frame (%d of %d bytes)", n, size)
}

func frameSize(head []byte) (int, error) {
	size := binary.BigEndian.Uint32(head)
	if size > MaxFrameBytes {
		return 0, protocolErrorf("frame length %d exceeds the %d-byte limit (not a sluice frame stream?)", size, MaxFrameBytes)
	}
	return int(size), nil
}

// frameReader reads frame bodies from a bufio.Reader without a copy when they fit in
// its buffer.
type frameReader struct{ r *bufio.Reader }

// buffered reports whether a whole frame is in the buffer (next will not wait).
func (fr frameReader) buffered() bool {
	n := fr.r.Buffered()
	if n < 4 {
		return false
	}
	head, _ := fr.r.Peek(4)
	return 4+int(binary.BigEndian.Uint32(head)) <= n
}

// next returns the next frame's body, valid until the following call; io.EOF at a
// clean end of stream.
func (fr frameReader) next() ([]byte, error) {
	head, err := fr.r.Peek(4)
	if len(head) < 4 {
		if err == io.EOF && len(head) == 0 {
			return nil, io.EOF
		}
		if err == io.EOF {
			return nil, headerCut(len(head))
		}
		return nil, err
	}
	size, err := frameSize(head)
	if err != nil {
		return nil, err
	}
	if 4+size > fr.r.Size() {
		_, _ = fr.r.Discard(4)
		body := make([]byte, size)
		n, err := io.ReadFull(fr.r, body)
		if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, bodyCut(n, size)
		}
		if err != nil {
			return nil, err
		}
		return body, nil
	}
	buf, err := fr.r.Peek(4 + size)
	if len(buf) < 4+size {
		if err == io.EOF {
			return nil, bodyCut(len(buf)-4, size)
		}
		return nil, err
	}
	_, _ = fr.r.Discard(4 + size) // buf stays valid until the next read
	return buf[4:], nil
}

// kindName names a frame's kind for error messages.
func kindName(f *sluicepb.Frame) string {
	switch f.Kind.(type) {
	case *sluicepb.Frame_Hello:
		return "hello"
	case *sluicepb.Frame_HelloAck:
		return "hello_ack"
	case *sluicepb.Frame_Invoke:
		return "invoke"
	case *sluicepb.Frame_Result:
		return "result"
	case *sluicepb.Frame_Cancel:
		return "cancel"
	case *sluicepb.Frame_Log:
		return "log"
	case *sluicepb.Frame_Goodbye:
		return "goodbye"
	}
	return "unknown"
}
