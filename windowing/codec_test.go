package windowing

import (
	"reflect"
	"testing"
	"time"

	"github.com/outbound-webhooks/outbound/schemas"
)

// FuzzMessageCodec: every message the store is given comes back from a chunk
// field for field, with its arrival offset, however many entries the chunk
// holds. Strings are stored as bytes, so any content survives, including what
// JSON could never carry.
func FuzzMessageCodec(f *testing.F) {
	f.Add("m1", "sent", int64(1614183929000), int64(0), "John Doe", "+972540000000", "Jane Smith", "+972550000000", "lorem ipsum", "https://app.timelines.ai/permalink/x/")
	f.Add("\x00d", "received", int64(-1), int64(-1), "", "", "", "", "", "")
	f.Add("שלום", "", int64(1<<62), int64(1<<40), "a\x00b", "\xff\xfe", "😀", "\u202e", "<script>alert(1)</script>\r\n", "javascript:alert(1)")
	f.Fuzz(func(t *testing.T, id, direction string, ms, offset int64, senderName, senderPhone, recipientName, recipientPhone, text, permalink string) {
		m := Message{
			ID: id, Direction: direction, At: time.UnixMilli(ms).UTC(),
			Sender:    schemas.Party{FullName: senderName, Phone: senderPhone},
			Recipient: schemas.Party{FullName: recipientName, Phone: recipientPhone},
			Text:      text, Permalink: permalink,
		}
		next := Message{ID: "next", Direction: schemas.DirectionSent, At: time.UnixMilli(1).UTC(), Text: "after"}
		want := []stored{{m, offset}, {next, offset + 1}, {m, offset}}
		var chunk []byte
		for _, s := range want {
			chunk = append(chunk, encodeEntry(s.m, s.offset)...)
		}
		got, err := decodeChunk(chunk)
		if err != nil {
			t.Fatalf("decoding what was just encoded: %v", err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip changed the chunk:\n got %+v\nwant %+v", got, want)
		}
	})
}

// FuzzDetailsCodec: a window's account and chat details come back from their
// stored form, except IsNewChat, which is a window flag stored apart.
func FuzzDetailsCodec(f *testing.F) {
	f.Add("Amnon Haha", "amnon@acme.com", "+972500000000", "John Doe", "Amnon", "amnon@acme.com", "https://app.timelines.ai/chat/1/", "10010001", true, "+97254000000")
	f.Add("", "", "", "", "", "", "", "", false, "")
	f.Add("\x00", "\xff", "😀", "<b>", "\u202e", "a\x1fb", "javascript:x", "\x00d", true, "\r\n")
	f.Fuzz(func(t *testing.T, accName, accEmail, accPhone, chatName, respName, respEmail, chatURL, chatID string, group bool, phone string) {
		a := schemas.Account{FullName: accName, Email: accEmail, Phone: accPhone}
		c := schemas.Chat{FullName: chatName, ResponsibleName: respName, ResponsibleEmail: respEmail,
			ChatURL: chatURL, ChatID: chatID, IsGroup: group, Phone: phone, IsNewChat: true}
		gotA, gotC, err := decodeDetails(encodeDetails(a, c))
		if err != nil {
			t.Fatalf("decoding what was just encoded: %v", err)
		}
		c.IsNewChat = false
		if gotA != a || gotC != c {
			t.Fatalf("round trip changed the details:\n got %+v %+v\nwant %+v %+v", gotA, gotC, a, c)
		}
	})
}

// FuzzDecodeStored feeds arbitrary bytes to the decoders, as a corrupted or
// foreign Redis value would: they return errCorrupt or a value, never panic, and
// a value they return is one the encoders reproduce.
func FuzzDecodeStored(f *testing.F) {
	f.Add(encodeEntry(Message{ID: "m", Direction: "sent", At: time.UnixMilli(1614183929000), Text: "hi"}, 7))
	f.Add(encodeDetails(schemas.Account{FullName: "A"}, schemas.Chat{ChatID: "c", IsGroup: true}))
	f.Add([]byte{})
	f.Add([]byte{codecVersion})
	f.Add([]byte{codecVersion, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{codecV2, 0})
	f.Add([]byte{codecV2Received + 1, 0})
	f.Add([]byte(v1Record))
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, off, err := decodeMessage("id", b); err == nil {
			again, err := decodeChunk(encodeEntry(m, off))
			if err != nil || !reflect.DeepEqual(again, []stored{{m, off}}) {
				t.Fatalf("decoded message %+v at %d does not survive re-encoding: %+v, %v", m, off, again, err)
			}
		}
		if entries, err := decodeChunk(b); err == nil {
			var chunk []byte
			for _, s := range entries {
				chunk = append(chunk, encodeEntry(s.m, s.offset)...)
			}
			again, err := decodeChunk(chunk)
			if err != nil || !reflect.DeepEqual(again, entries) {
				t.Fatalf("decoded chunk %+v does not survive re-encoding: %+v, %v", entries, again, err)
			}
		}
		if a, c, err := decodeDetails(b); err == nil {
			againA, againC, err := decodeDetails(encodeDetails(a, c))
			if err != nil || againA != a || againC != c {
				t.Fatalf("decoded details %+v %+v do not survive re-encoding: %+v %+v, %v", a, c, againA, againC, err)
			}
		}
	})
}

// v1Record is a message as the version before codecV2 stored it, at offset 7:
// a window buffered before a rolling upgrade holds records like it.
const v1Record = "\x01\x08received\x80\xe7\xc8\xc7\x98c\x0e\x0aJane Smith\x0d+972550000000\x08John Doe\x0d+972540000000" +
	"\x1awritten before the upgrade'https://app.timelines.ai/permalink/old/"

// v1Message is what v1Record holds.
var v1Message = Message{ID: "old", Direction: "received", At: time.UnixMilli(1704103320000).UTC(),
	Sender:    schemas.Party{FullName: "Jane Smith", Phone: "+972550000000"},
	Recipient: schemas.Party{FullName: "John Doe", Phone: "+972540000000"},
	Text:      "written before the upgrade", Permalink: "https://app.timelines.ai/permalink/old/"}
