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

// The three stages of DecodeEvent, to see where the time goes.

func BenchmarkDecodeEventParse(b *testing.B) {
	data := benchmarkEvent(b)
	for b.Loop() {
		if _, err := parseJSON(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeEventValidate(b *testing.B) {
	data := benchmarkEvent(b)
	doc, err := parseJSON(data)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := compiled.event.Validate(doc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeEventBuild(b *testing.B) {
	data := benchmarkEvent(b)
	doc, err := parseJSON(data)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := eventFromDoc(doc); err != nil {
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
