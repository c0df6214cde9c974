package sink

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"slices"
	"strings"

	"github.com/outbound-webhooks/outbound/internal/urls"
	"github.com/outbound-webhooks/outbound/schemas"
	"github.com/outbound-webhooks/outbound/webhook"
	"github.com/outbound-webhooks/outbound/windowing"
)

// lineBreak separates the lines of an aggregation.
const lineBreak = "<br/>"

// aggregationTimeLayout is how message times read in the aggregation field, UTC.
const aggregationTimeLayout = "2006-01-02 15:04"

// Render returns the JSON body delivered for b: a schemas.MessagePayload when the
// granularity is none, a schemas.BundlePayload otherwise. product is the product
// name the aggregation's closing link names ("TimelinesAI").
//
// The bytes returned are exactly the bytes to sign and send: HTML characters are
// not escaped (receivers and CRMs should see "<br/>", not "\u003cbr/\u003e") and
// there is no trailing newline.
func Render(b windowing.Bundle, product string) ([]byte, error) {
	if len(b.Messages) == 0 {
		return nil, fmt.Errorf("rendering bundle %q: bundle has no messages", b.ID)
	}
	if b.Granularity == webhook.None {
		// A none bundle with several messages is a bug upstream; refusing it keeps
		// the other messages from being dropped without a trace.
		if len(b.Messages) != 1 {
			return nil, fmt.Errorf("rendering bundle %q: granularity none carries %d messages, want 1", b.ID, len(b.Messages))
		}
		return encode(b.ID, schemas.MessagePayload{
			WhatsAppAccount: b.Account,
			Chat:            b.Chat,
			Message:         wireMessage(b.Messages[0]),
		})
	}
	return renderBundle(b, sorted(b.Messages), product)
}

// sorted returns msgs in payload order. The window normally hands messages
// over sorted already; sorting again (stable, so equal timestamps keep arrival
// order) makes the payload right whatever the caller did, and copying leaves
// the caller's slice alone.
func sorted(msgs []windowing.Message) []windowing.Message {
	msgs = slices.Clone(msgs)
	slices.SortStableFunc(msgs, func(x, y windowing.Message) int {
		return x.At.Compare(y.At)
	})
	return msgs
}

// renderBundle renders msgs, already in payload order, as one bundle payload
// of b with its own timestamps and aggregation.
func renderBundle(b windowing.Bundle, msgs []windowing.Message, product string) ([]byte, error) {
	wire := make([]schemas.Message, len(msgs))
	for i, m := range msgs {
		wire[i] = wireMessage(m)
	}
	return encode(b.ID, schemas.BundlePayload{
		WhatsAppAccount:       b.Account,
		Chat:                  b.Chat,
		Messages:              wire,
		FirstMessageTimestamp: schemas.Timestamp{Time: msgs[0].At.UTC()},
		LastMessageTimestamp:  schemas.Timestamp{Time: msgs[len(msgs)-1].At.UTC()},
		Aggregation:           Aggregation(msgs, b.Chat.ChatURL, product),
	})
}

// encode is the JSON of v as it is signed and sent: HTML characters are not
// escaped and there is no trailing newline.
func encode(id string, v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encoding payload of bundle %q: %w", id, err)
	}
	// Encode ends every value with a newline; the body is the value alone.
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func wireMessage(m windowing.Message) schemas.Message {
	return schemas.Message{
		Direction: m.Direction,
		Timestamp: schemas.Timestamp{Time: m.At.UTC()},
		MessageID: m.ID,
		Sender:    m.Sender,
		Recipient: m.Recipient,
		Text:      m.Text,
	}
}

// newlines turns every line break of a message into an HTML line break. "\r\n"
// is listed first so it becomes one <br/>, not two; a lone "\r" (old Mac line
// ends) is a line break too.
var newlines = strings.NewReplacer("\r\n", "<br/>", "\n", "<br/>", "\r", "<br/>")

// Aggregation returns the HTML that joins msgs, in the order given, for the
// aggregation field of a bundle:
//
//	from {sender} on {YYYY-MM-DD HH:MM}: {text}<br/>from ...<br/>Click <a href='{link}'>here</a> to open the conversation in {product}
//
// Times are UTC. Sender names, texts and the product name are HTML-escaped, so a
// "<script>" in a message reaches the CRM as text; line breaks in a text become
// <br/>. The link is the first message's permalink, or chatURL when that is
// empty.
//
// The closing "Click here" sentence is left out when the link is not an absolute
// http or https URL: a javascript: or data: link would run in the CRM of whoever
// clicks it, and a relative one leads nowhere. A bad permalink does not fall back
// to chatURL: it means the upstream data is wrong, and guessing another link
// would hide that.
func Aggregation(msgs []windowing.Message, chatURL, product string) string {
	var sb strings.Builder
	for i, m := range msgs {
		if i > 0 {
			sb.WriteString(lineBreak)
		}
		sb.WriteString(aggregationLine(m))
	}

	link := chatURL
	if len(msgs) > 0 && msgs[0].Permalink != "" {
		link = msgs[0].Permalink
	}
	if urls.CheckHTTP(link) == nil {
		// html.EscapeString escapes ' as well, which the single-quoted attribute
		// needs.
		if sb.Len() > 0 {
			sb.WriteString(lineBreak)
		}
		sb.WriteString("Click <a href='")
		sb.WriteString(html.EscapeString(link))
		sb.WriteString("'>here</a> to open the conversation in ")
		sb.WriteString(html.EscapeString(product))
	}
	return sb.String()
}

// aggregationLine is one message's line of an aggregation.
func aggregationLine(m windowing.Message) string {
	return "from " + html.EscapeString(m.Sender.FullName) + " on " + m.At.UTC().Format(aggregationTimeLayout) +
		": " + newlines.Replace(html.EscapeString(m.Text))
}
