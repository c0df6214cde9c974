package schemas

import (
	"os"
	"testing"
)

func benchmarkEvent(b *testing.B) []byte {
	b.Helper()
	data, err := os.ReadFile("testdata/chat.message.v1.example.json")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	return data
}

// BenchmarkDecodeEvent is the ingest hot path: one pass into the Event.
func BenchmarkDecodeEvent(b *testing.B) {
	data := benchmarkEvent(b)
	for b.Loop() {
		if _, err := DecodeEvent(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeEventValidator is the same work done by the generic parser and
// the validator (referenceDecodeEvent, the hot path before eventDecoder), for
// comparison in the same run.
func BenchmarkDecodeEventValidator(b *testing.B) {
	data := benchmarkEvent(b)
	for b.Loop() {
		if _, err := referenceDecodeEvent(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeEventInvalid(b *testing.B) {
	data := []byte(`{"workspace_id":"ws_1","whatsapp_account":{},"chat":{"chat_id":""},"message":{"message_id":"m","direction":"x","timestamp":"later"}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeEvent(data); err == nil {
			b.Fatal("want an error")
		}
	}
}
