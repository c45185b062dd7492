package routing

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestWireRoundTrip(t *testing.T) {
	dl := time.UnixMicro(1_800_000_000_123_456)
	reqs := []Request{
		{Expert: "bafy", Vector: []float32{1, -2.5, 3}, Deadline: dl},
		{Expert: "bafy", Text: "how do I sort", Deadline: dl},
		{Expert: "bafy", Image: []byte{0x89, 'P', 'N', 'G'}, Deadline: dl},
	}
	for _, r := range reqs {
		got, err := DecodeRequest(EncodeRequest(r))
		if err != nil || !reflect.DeepEqual(got, r) {
			t.Fatalf("request %+v came back as %+v (%v)", r, got, err)
		}
	}
	resp := Response{Expert: "bafy", Label: "Sneaker", Output: []float32{0.1, 0.9}, Compute: 1234 * time.Nanosecond}
	got, err := DecodeResponse(EncodeResponse(resp))
	if err != nil || !reflect.DeepEqual(got, resp) {
		t.Fatalf("response came back as %+v (%v)", got, err)
	}
}

func TestWireRejectsBadMessages(t *testing.T) {
	good := EncodeRequest(Request{Expert: "bafy", Vector: []float32{1, 2}})
	huge := append([]byte{wireVersion, 0}, make([]byte, 8)...)
	huge = append(huge, 0, 0xff, 0xff, 0xff, 0xff, 0x0f) // a vector of 2^32-1 values
	for name, b := range map[string][]byte{
		"empty":       nil,
		"version":     append([]byte{9}, good[1:]...),
		"truncated":   good[:len(good)-2],
		"trailing":    append(append([]byte(nil), good...), 0),
		"huge vector": huge,
		"kind":        append(append([]byte(nil), good[:14]...), 7), // version, expert, deadline, then kind 7
	} {
		if _, err := DecodeRequest(b); !errors.Is(err, ErrBadMessage) {
			t.Errorf("%s: got %v, want ErrBadMessage", name, err)
		}
	}
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add(EncodeRequest(Request{Expert: "bafy", Vector: []float32{1, 2}}))
	f.Add(EncodeRequest(Request{Expert: "bafy", Text: "hello"}))
	f.Add([]byte{1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRequest(b)
		if err != nil {
			return
		}
		if _, err := DecodeRequest(EncodeRequest(r)); err != nil {
			t.Fatalf("a decoded request does not survive re-encoding: %v", err)
		}
	})
}

func FuzzDecodeResponse(f *testing.F) {
	f.Add(EncodeResponse(Response{Expert: "bafy", Label: "x", Output: []float32{1}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := DecodeResponse(b); err == nil {
			if _, err := DecodeResponse(EncodeResponse(r)); err != nil {
				t.Fatalf("re-encoding: %v", err)
			}
		}
	})
}
