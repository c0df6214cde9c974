package sink

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outbound-webhooks/outbound/schemas"
	"github.com/outbound-webhooks/outbound/webhook"
	"github.com/outbound-webhooks/outbound/windowing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ with the current output")

// t0 is the first message time of the spec's example.
var t0 = time.Date(2021, 2, 24, 16, 25, 29, 0, time.UTC)

func specAccount() schemas.Account {
	return schemas.Account{FullName: "Amnon Haha", Email: "Amnon@acme.com", Phone: "+972500000000"}
}

func directChat() schemas.Chat {
	return schemas.Chat{
		FullName:         "John Doe",
		ResponsibleName:  "Amnon",
		ResponsibleEmail: "Amnon@acme.com",
		ChatURL:          "https://app.timelines.ai/chat/10010001/messages/",
		ChatID:           "10010001",
		IsNewChat:        true,
		IsGroup:          false,
		Phone:            "+97254000000",
	}
}

func groupChat() schemas.Chat {
	return schemas.Chat{
		FullName:         "Sales team 🚀",
		ResponsibleName:  "Amnon",
		ResponsibleEmail: "Amnon@acme.com",
		ChatURL:          "https://app.timelines.ai/chat/10010002/messages/",
		ChatID:           "10010002",
		IsNewChat:        false,
		IsGroup:          true,
		Phone:            "",
	}
}

var (
	john = schemas.Party{FullName: "John Doe", Phone: "+972540000000"}
	jane = schemas.Party{FullName: "Jane Smith", Phone: "+972550000000"}
)

const permalink = "https://app.timelines.ai/permalink/77a28d55-5345-5435-8c72-3a7bcad8ded9/"

// msg builds a message sent by from to to at t0 + offset.
func msg(id string, offset time.Duration, from, to schemas.Party, text string) windowing.Message {
	dir := schemas.DirectionReceived
	if from == jane {
		dir = schemas.DirectionSent
	}
	return windowing.Message{ID: id, Direction: dir, At: t0.Add(offset), Sender: from, Recipient: to, Text: text}
}

func withPermalink(m windowing.Message, link string) windowing.Message {
	m.Permalink = link
	return m
}

func bundle(g webhook.Granularity, chat schemas.Chat, msgs ...windowing.Message) windowing.Bundle {
	return windowing.Bundle{
		ID:          "b_" + string(g) + "_" + chat.ChatID,
		Workspace:   "ws_1",
		ChatID:      chat.ChatID,
		Granularity: g,
		WindowStart: time.Date(2021, 2, 24, 16, 0, 0, 0, time.UTC),
		Account:     specAccount(),
		Chat:        chat,
		Messages:    msgs,
		Attempt:     1,
	}
}

func TestRenderGolden(t *testing.T) {
	groupMember := schemas.Party{FullName: "Dana Levi"}
	group := schemas.Party{FullName: "Sales team 🚀"}
	tests := []struct {
		name   string
		bundle windowing.Bundle
	}{
		{
			name: "single_message",
			bundle: bundle(webhook.None, directChat(),
				withPermalink(msg("ddfskhsd76dsfs6dsd5skjsdhf", 0, jane, john, "lorem ipsum"), permalink)),
		},
		{
			// Raw message fields are not HTML-escaped, in JSON or otherwise: only
			// the aggregation is HTML.
			name: "single_message_html",
			bundle: bundle(webhook.None, directChat(),
				msg("m_html", 0, schemas.Party{FullName: `Eve "<b>"`, Phone: "+1"}, jane, `<script>alert(1)</script> & "quoted" 'single'`)),
		},
		{
			// Given out of order; m2 and m3 share a timestamp and must keep
			// their input order. Times in another zone are rendered in UTC, whole
			// seconds.
			name: "bundle_direct_chat",
			bundle: bundle(webhook.H1, directChat(),
				msg("m3", 5*time.Minute, john, jane, "I am fine, how are you?"),
				withPermalink(msg("m1", 0, jane, john, "Hi! How are you?"), permalink),
				msg("m2", 5*time.Minute, jane, john, "(same second as the previous one)"),
				func() windowing.Message {
					m := msg("m4", 20*time.Minute+750*time.Millisecond, john, jane, "see you")
					m.At = m.At.In(time.FixedZone("IST", 2*3600))
					return m
				}(),
			),
		},
		{
			name: "bundle_group_chat",
			bundle: bundle(webhook.H6, groupChat(),
				withPermalink(msg("g1", 0, groupMember, group, "Morning all"), permalink),
				msg("g2", time.Hour, schemas.Party{FullName: "Amnon"}, group, "Standup at 10"),
			),
		},
		{
			name: "bundle_emoji",
			bundle: bundle(webhook.H12, directChat(),
				withPermalink(msg("e1", 0, schemas.Party{FullName: "John 👍🏽", Phone: "+972540000000"}, jane, "👍🏽"), permalink),
				msg("e2", time.Minute, jane, john, "Shalom from 🇮🇱!"),
				msg("e3", 2*time.Minute, john, jane, "family: 👨‍👩‍👧‍👦 (one ZWJ sequence)"),
			),
		},
		{
			name: "bundle_rtl",
			bundle: bundle(webhook.H24, directChat(),
				withPermalink(msg("r1", 0, schemas.Party{FullName: "יוסי כהן", Phone: "+972540000000"}, jane, "שלום, מה שלומך?"), permalink),
				msg("r2", time.Minute, schemas.Party{FullName: "محمد علي", Phone: "+971500000000"}, jane, "مرحبا، كيف حالك؟"),
				msg("r3", 2*time.Minute, jane, john, "mixed: order #123 הוזמנה ok"),
			),
		},
		{
			name: "bundle_html",
			bundle: bundle(webhook.H1, directChat(),
				withPermalink(msg("h1", 0, schemas.Party{FullName: `<script>alert(1)</script>`, Phone: "+1"}, jane,
					`<script>alert(1)</script>`), "https://app.timelines.ai/permalink/x/?a=1&b='2'"),
				msg("h2", time.Minute, schemas.Party{FullName: `Tom & "Jerry" O'Brien`, Phone: "+2"}, jane,
					`Fish & chips, "quoted", 'single', 1 < 2 > 0, <br/> typed by hand, &amp; already escaped`),
			),
		},
		{
			name: "bundle_multiline",
			bundle: bundle(webhook.H1, directChat(),
				withPermalink(msg("n1", 0, john, jane, "line one\nline two\r\nline three\rline four\n"), permalink),
				msg("n2", time.Minute, jane, john, "\n\nblank lines above"),
			),
		},
		{
			name: "bundle_no_permalink",
			bundle: bundle(webhook.H1, directChat(),
				msg("p1", 0, john, jane, "no permalink here"),
				withPermalink(msg("p2", time.Minute, jane, john, "only the first message's link counts"), permalink),
			),
		},
		{
			name: "bundle_javascript_permalink",
			bundle: bundle(webhook.H1, directChat(),
				withPermalink(msg("j1", 0, john, jane, "click me"), "javascript:alert(document.cookie)"),
				msg("j2", time.Minute, jane, john, "no"),
			),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Render(tt.bundle, "TimelinesAI")
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			checkPayload(t, tt.bundle, got)

			path := filepath.Join("testdata", tt.name+".golden.json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("reading golden file (run go test ./sink -run Render -update to create it): %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Render() differs from %s (run with -update if the change is intended)\n got: %s\nwant: %s", path, got, want)
			}
		})
	}
}

// checkPayload checks what every rendered body must satisfy, golden or not.
func checkPayload(t *testing.T, b windowing.Bundle, body []byte) {
	t.Helper()
	if bytes.HasSuffix(body, []byte("\n")) {
		t.Error("body ends with a newline")
	}
	if bytes.Contains(body, []byte(`\u003c`)) || bytes.Contains(body, []byte(`\u0026`)) {
		t.Error("body has HTML characters escaped as \\u003c or \\u0026")
	}
	if b.Granularity == webhook.None {
		if err := schemas.ValidateMessagePayload(body); err != nil {
			t.Errorf("ValidateMessagePayload: %v", err)
		}
		var p schemas.MessagePayload
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatalf("decoding message payload: %v", err)
		}
		if p.Message.MessageID != b.Messages[0].ID || p.Message.Text != b.Messages[0].Text {
			t.Errorf("message = %+v, want the bundle's only message", p.Message)
		}
		return
	}
	if err := schemas.ValidateBundlePayload(body); err != nil {
		t.Errorf("ValidateBundlePayload: %v", err)
	}
	var p schemas.BundlePayload
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("decoding bundle payload: %v", err)
	}
	if len(p.Messages) != len(b.Messages) {
		t.Fatalf("%d messages, want %d", len(p.Messages), len(b.Messages))
	}
	for i := 1; i < len(p.Messages); i++ {
		if p.Messages[i].Timestamp.Before(p.Messages[i-1].Timestamp.Time) {
			t.Errorf("messages[%d] is older than messages[%d]", i, i-1)
		}
	}
	if !p.FirstMessageTimestamp.Equal(p.Messages[0].Timestamp.Time) ||
		!p.LastMessageTimestamp.Equal(p.Messages[len(p.Messages)-1].Timestamp.Time) {
		t.Errorf("first/last = %s/%s, want the first and last message times", p.FirstMessageTimestamp, p.LastMessageTimestamp)
	}
	if p.Chat != b.Chat || p.WhatsAppAccount != b.Account {
		t.Errorf("chat/account changed: %+v %+v", p.Chat, p.WhatsAppAccount)
	}
	if strings.Contains(p.Aggregation, "<script>") {
		t.Errorf("aggregation carries a live <script> tag: %s", p.Aggregation)
	}
}

func TestRenderSortsStablyWithoutTouchingInput(t *testing.T) {
	in := []windowing.Message{
		msg("c", 2*time.Second, john, jane, "c"),
		msg("a1", 0, john, jane, "a1"),
		msg("b", time.Second, john, jane, "b"),
		msg("a2", 0, john, jane, "a2"),
	}
	orig := slices.Clone(in)
	body, err := Render(bundle(webhook.H1, directChat(), in...), "TimelinesAI")
	if err != nil {
		t.Fatal(err)
	}
	var p schemas.BundlePayload
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range p.Messages {
		ids = append(ids, m.MessageID)
	}
	if want := []string{"a1", "a2", "b", "c"}; !slices.Equal(ids, want) {
		t.Errorf("order = %v, want %v", ids, want)
	}
	if !slices.EqualFunc(in, orig, func(x, y windowing.Message) bool { return x.ID == y.ID }) {
		t.Errorf("Render reordered the caller's slice: %v", in)
	}
}

func TestRenderRejects(t *testing.T) {
	tests := []struct {
		name    string
		bundle  windowing.Bundle
		wantErr string
	}{
		{name: "no messages", bundle: bundle(webhook.H1, directChat()), wantErr: "no messages"},
		{name: "no messages, granularity none", bundle: bundle(webhook.None, directChat()), wantErr: "no messages"},
		{
			name:    "granularity none with two messages",
			bundle:  bundle(webhook.None, directChat(), msg("1", 0, john, jane, "a"), msg("2", 0, john, jane, "b")),
			wantErr: "granularity none carries 2 messages",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Render(tt.bundle, "TimelinesAI")
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Render() error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestRenderLargeBundle(t *testing.T) {
	const n = 1000
	msgs := make([]windowing.Message, n)
	// Reverse order on input, so the sort does real work.
	for i := range n {
		msgs[n-1-i] = msg(fmt.Sprintf("m%04d", i), time.Duration(i)*3*time.Second, john, jane, fmt.Sprintf("message %d <i>", i))
	}
	msgs[n-1].Permalink = permalink // the earliest message, once sorted
	b := bundle(webhook.H1, directChat(), msgs...)

	body, err := Render(b, "TimelinesAI")
	if err != nil {
		t.Fatal(err)
	}
	checkPayload(t, b, body)

	var p schemas.BundlePayload
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	if p.Messages[0].MessageID != "m0000" || p.Messages[n-1].MessageID != "m0999" {
		t.Errorf("first/last ids = %s/%s, want m0000/m0999", p.Messages[0].MessageID, p.Messages[n-1].MessageID)
	}
	if want := t0.Add((n - 1) * 3 * time.Second); !p.LastMessageTimestamp.Equal(want) {
		t.Errorf("last_message_timestamp = %s, want %s", p.LastMessageTimestamp, want)
	}
	lines := strings.Split(p.Aggregation, "<br/>")
	if len(lines) != n+1 {
		t.Fatalf("aggregation has %d lines, want %d messages and the link", len(lines), n+1)
	}
	if want := "from John Doe on 2021-02-24 16:25: message 0 &lt;i&gt;"; lines[0] != want {
		t.Errorf("line 0 = %q, want %q", lines[0], want)
	}
	if want := "from John Doe on 2021-02-24 17:15: message 999 &lt;i&gt;"; lines[n-1] != want {
		t.Errorf("line 999 = %q, want %q", lines[n-1], want)
	}
	if want := "Click <a href='" + permalink + "'>here</a> to open the conversation in TimelinesAI"; lines[n] != want {
		t.Errorf("last line = %q, want %q", lines[n], want)
	}
}

func TestAggregation(t *testing.T) {
	const chatURL = "https://app.timelines.ai/chat/1/messages/"
	one := func(text, link string) []windowing.Message {
		return []windowing.Message{withPermalink(msg("1", 0, john, jane, text), link)}
	}
	tests := []struct {
		name    string
		msgs    []windowing.Message
		chatURL string
		product string
		want    string
	}{
		{
			name:    "spec example",
			msgs:    []windowing.Message{withPermalink(msg("1", 0, john, jane, "Hi! How are you?"), permalink), msg("2", 5*time.Minute, jane, john, "I am fine, how are you?")},
			chatURL: chatURL,
			product: "TimelinesAI",
			want:    "from John Doe on 2021-02-24 16:25: Hi! How are you?<br/>from Jane Smith on 2021-02-24 16:30: I am fine, how are you?<br/>Click <a href='" + permalink + "'>here</a> to open the conversation in TimelinesAI",
		},
		{
			name:    "falls back to the chat url",
			msgs:    one("hi", ""),
			chatURL: chatURL,
			product: "TimelinesAI",
			want:    "from John Doe on 2021-02-24 16:25: hi<br/>Click <a href='" + chatURL + "'>here</a> to open the conversation in TimelinesAI",
		},
		{
			name:    "other product name, escaped",
			msgs:    one("hi", permalink),
			product: "Acme <CRM>",
			want:    "from John Doe on 2021-02-24 16:25: hi<br/>Click <a href='" + permalink + "'>here</a> to open the conversation in Acme &lt;CRM&gt;",
		},
		{
			name:    "time shown in UTC",
			msgs:    []windowing.Message{{Sender: john, Text: "x", At: time.Date(2021, 2, 25, 1, 5, 59, 0, time.FixedZone("EST", -5*3600)), Permalink: permalink}},
			product: "P",
			want:    "from John Doe on 2021-02-25 06:05: x<br/>Click <a href='" + permalink + "'>here</a> to open the conversation in P",
		},
		{
			name: "newlines become br",
			msgs: one("a\nb\r\nc\rd\n\ne", "javascript:void(0)"),
			want: "from John Doe on 2021-02-24 16:25: a<br/>b<br/>c<br/>d<br/><br/>e",
		},
		{
			name: "html in name and text is escaped",
			msgs: []windowing.Message{{Sender: schemas.Party{FullName: `<img src=x onerror="alert(1)">`}, Text: `</a><script>x</script> & 'q'`, At: t0}},
			want: "from &lt;img src=x onerror=&#34;alert(1)&#34;&gt; on 2021-02-24 16:25: &lt;/a&gt;&lt;script&gt;x&lt;/script&gt; &amp; &#39;q&#39;",
		},
		{
			name:    "quote in link cannot leave the attribute",
			msgs:    one("x", "https://a.example/p?q=' onmouseover='alert(1)"),
			product: "P",
			want:    "from John Doe on 2021-02-24 16:25: x<br/>Click <a href='https://a.example/p?q=&#39; onmouseover=&#39;alert(1)'>here</a> to open the conversation in P",
		},
		{
			name:    "upper-case scheme is a web url",
			msgs:    one("x", "HTTPS://app.timelines.ai/p/1"),
			product: "P",
			want:    "from John Doe on 2021-02-24 16:25: x<br/>Click <a href='HTTPS://app.timelines.ai/p/1'>here</a> to open the conversation in P",
		},
		{name: "no link at all", msgs: one("x", ""), want: "from John Doe on 2021-02-24 16:25: x"},
		{name: "javascript link", msgs: one("x", "javascript:alert(1)"), chatURL: chatURL, want: "from John Doe on 2021-02-24 16:25: x"},
		{name: "JavaScript link in mixed case", msgs: one("x", "JaVaScRiPt:alert(1)"), want: "from John Doe on 2021-02-24 16:25: x"},
		{name: "data link", msgs: one("x", "data:text/html,<script>alert(1)</script>"), want: "from John Doe on 2021-02-24 16:25: x"},
		{name: "ftp link", msgs: one("x", "ftp://files.example/x"), want: "from John Doe on 2021-02-24 16:25: x"},
		{name: "relative link", msgs: one("x", "/chat/1"), want: "from John Doe on 2021-02-24 16:25: x"},
		{name: "scheme-relative link", msgs: one("x", "//evil.example/x"), want: "from John Doe on 2021-02-24 16:25: x"},
		{name: "http without host", msgs: one("x", "http:evil"), want: "from John Doe on 2021-02-24 16:25: x"},
		{name: "unparseable link", msgs: one("x", "https://a.example/\x00"), want: "from John Doe on 2021-02-24 16:25: x"},
		{name: "bad chat url", msgs: one("x", ""), chatURL: "javascript:alert(1)", want: "from John Doe on 2021-02-24 16:25: x"},
		{name: "no messages, link only", chatURL: chatURL, product: "P", want: "Click <a href='" + chatURL + "'>here</a> to open the conversation in P"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Aggregation(tt.msgs, tt.chatURL, tt.product); got != tt.want {
				t.Errorf("Aggregation() =\n %s\nwant\n %s", got, tt.want)
			}
		})
	}
}
