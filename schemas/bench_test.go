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

// BenchmarkDecodeEvent is the ingest hot path: parse, validate, build the Event.
func BenchmarkDecodeEvent(b *testing.B) {
	data := benchmarkEvent(b)
	for b.Loop() {
		if _, err := DecodeEvent(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeEventStages times the three stages of DecodeEvent, to see
// where the time goes.
func BenchmarkDecodeEventStages(b *testing.B) {
	stages := []struct {
		name string
		run  func(data []byte, doc any) error
	}{
		{"parse", func(data []byte, _ any) error { _, err := parseJSON(data); return err }},
		{"validate", func(_ []byte, doc any) error { return compiled.event.Validate(doc) }},
		{"build", func(_ []byte, doc any) error { _, err := eventFromDoc(doc); return err }},
	}
	for _, st := range stages {
		b.Run(st.name, func(b *testing.B) {
			data := benchmarkEvent(b)
			doc, err := parseJSON(data)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if err := st.run(data, doc); err != nil {
					b.Fatal(err)
				}
			}
		})
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
