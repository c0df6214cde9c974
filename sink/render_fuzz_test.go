package sink

import (
	"encoding/json"
	"html"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/outbound-webhooks/outbound/internal/urls"
	"github.com/outbound-webhooks/outbound/schemas"
	"github.com/outbound-webhooks/outbound/webhook"
	"github.com/outbound-webhooks/outbound/windowing"
)

// maxWireMillis is the last instant the wire's timestamp layout can write
// (9999-12-31T23:59:59.999Z); a decoded event never holds a later one.
const maxWireMillis = 253402300799999

// FuzzRender renders a two-message bundle and a single message whose names,
// texts and links are arbitrary (valid UTF-8, as decoding leaves them): the body
// is always a valid payload that carries the texts unchanged, and the
// aggregation's only markup is its own line breaks and closing link, with every
// character of the input escaped.
func FuzzRender(f *testing.F) {
	f.Add("John Doe", "Hi! How are you?", "Jane", "I am fine\r\nthanks\rbye\n", permalink, "https://app.timelines.ai/chat/1/", "TimelinesAI", int64(1614183929000))
	f.Add("<script>alert(1)</script>", "<b>bold</b> & 'quoted' \"double\"", "", "", "javascript:alert(1)", "", "", int64(0))
	f.Add("</a><a href='x'>", "<br/>&lt;br/&gt;", "\u202eevil", "😀👍🏽", "https://x.example/'><script>", "/relative", "<i>P</i>", int64(maxWireMillis))
	f.Add("a\x00b", "\x1f\x7f\u0085", "", "", "", "http://a.example/?q=<'\">", "&amp;", int64(-1))
	f.Fuzz(func(t *testing.T, name1, text1, name2, text2, link, chatURL, product string, ms int64) {
		for _, s := range []string{name1, text1, name2, text2, link, chatURL, product} {
			if !utf8.ValidString(s) {
				return // decoding replaces invalid UTF-8 long before rendering
			}
		}
		ms %= maxWireMillis - 1000 // the second message is a second later
		if ms < 0 {
			ms = -ms
		}
		at := time.UnixMilli(ms).UTC()
		chat := directChat()
		chat.ChatURL = chatURL
		msgs := []windowing.Message{
			{ID: "m1", Direction: schemas.DirectionReceived, At: at, Sender: schemas.Party{FullName: name1}, Text: text1, Permalink: link},
			{ID: "m2", Direction: schemas.DirectionSent, At: at.Add(time.Second), Sender: schemas.Party{FullName: name2}, Text: text2},
		}
		b := bundle(webhook.H1, chat, msgs...)
		body, err := Render(b, product)
		if err != nil {
			t.Fatalf("Render: %v", err)
		}
		checkPayload(t, b, body)
		var p schemas.BundlePayload
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatal(err)
		}
		if p.Messages[0].Text != text1 || p.Messages[1].Text != text2 || p.Messages[0].Sender.FullName != name1 {
			t.Errorf("texts or names changed on the way: %+v", p.Messages)
		}
		if p.Aggregation != Aggregation(msgs, chatURL, product) {
			t.Errorf("payload aggregation differs from Aggregation")
		}
		checkAggregationEscapes(t, p.Aggregation, msgs, chatURL, product)

		single := bundle(webhook.None, chat, msgs[0])
		body, err = Render(single, product)
		if err != nil {
			t.Fatalf("Render single: %v", err)
		}
		checkPayload(t, single, body)
	})
}

// checkAggregationEscapes takes the aggregation's own markup away (the closing
// link, then every <br/>) and checks that what is left holds no character that
// could open a tag or end an attribute, and unescapes to the input exactly.
func checkAggregationEscapes(t *testing.T, agg string, msgs []windowing.Message, chatURL, product string) {
	t.Helper()
	link := chatURL
	if msgs[0].Permalink != "" {
		link = msgs[0].Permalink
	}
	rest := agg
	if urls.CheckHTTP(link) == nil {
		tail := "<br/>Click <a href='" + html.EscapeString(link) + "'>here</a> to open the conversation in " + html.EscapeString(product)
		var ok bool
		if rest, ok = strings.CutSuffix(agg, tail); !ok {
			t.Fatalf("aggregation %q does not end with the link %q", agg, tail)
		}
	} else if strings.Contains(agg, "<a ") {
		t.Fatalf("aggregation %q links to %q, which is no http(s) URL", agg, link)
	}
	rest = strings.ReplaceAll(rest, "<br/>", "\n")
	if strings.ContainsAny(rest, `<>'"`) {
		t.Fatalf("aggregation %q has unescaped markup outside its own", agg)
	}
	lineBreaks := strings.NewReplacer("\r\n", "\n", "\r", "\n")
	var want []string
	for _, m := range msgs {
		want = append(want, "from "+m.Sender.FullName+" on "+m.At.Format(aggregationTimeLayout)+": "+lineBreaks.Replace(m.Text))
	}
	if got := html.UnescapeString(rest); got != strings.Join(want, "\n") {
		t.Fatalf("aggregation unescapes to %q, want %q", got, strings.Join(want, "\n"))
	}
}
