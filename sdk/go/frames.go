package sluice

import (
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
	body, err := proto.Marshal(f)
	if err != nil {
		return nil, err
	}
	if len(body) > MaxFrameBytes {
		return nil, protocolErrorf("frame of %d bytes exceeds the %d-byte limit", len(body), MaxFrameBytes)
	}
	out := make([]byte, 4, 4+len(body))
	binary.BigEndian.PutUint32(out, uint32(len(body)))
	return append(out, body...), nil
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
		return nil, protocolErrorf("stream ended inside a frame header (%d of 4 bytes)", n)
	}
	if err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint32(head[:])
	if size > MaxFrameBytes {
		return nil, protocolErrorf("frame length %d exceeds the %d-byte limit (not a sluice frame stream?)", size, MaxFrameBytes)
	}
	body := make([]byte, size)
	n, err = io.ReadFull(r, body)
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, protocolErrorf("stream ended inside a frame (%d of %d bytes)", n, size)
	}
	if err != nil {
		return nil, err
	}
	return DecodeFrame(body)
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
