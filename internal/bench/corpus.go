package bench

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/outbound-webhooks/outbound/schemas"
	"github.com/outbound-webhooks/outbound/webhook"
	"github.com/outbound-webhooks/outbound/windowing"
)

// corpus generates the chat traffic of a run. It is deterministic (event i is
// the same in every run and every phase), so two runs measure the same bytes,
// and it looks like real chats: short texts with the odd long one, emoji and
// line breaks, group chats, names and phones of realistic length, so the JSON
// decoder, the codec and Redis see what production gives them.
type corpus struct {
	workspaces int
	chats      int
}

// seed fixes the corpus; changing it changes every figure a little.
const seed = 0x0b0b

var (
	firstNames = []string{"Maria", "John", "Amnon", "Fatima", "Wei", "Olga", "Carlos", "Aisha", "Dmitri",
		"Yuki", "Priya", "Lucas", "Noa", "Kwame", "Sofia", "Hiroshi", "Elena", "Tomás", "Zainab", "Lars"}
	lastNames = []string{"Gonzalez", "Doe", "Cohen", "Haddad", "Zhang", "Petrova", "Silva", "Okafor",
		"Ivanov", "Tanaka", "Sharma", "Martin", "Levi", "Mensah", "Rossi", "Sato", "Novak", "Müller", "Khan", "Berg"}
	companies = []string{"acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "tyrell"}
	words     = strings.Fields(`hi hello thanks ok sure yes no please order invoice delivery tomorrow today
		price quote meeting call back later confirm address payment received sent shipped tracking
		number the a to for of and is in on at we you can will be our your this that with have
		what when where how much available stock discount week monday friday morning afternoon
		great perfect sounds good let me check update sorry delay problem fixed done`)
	emoji = []string{"🙂", "👍", "🙏", "😂", "🎉", "✅"}
)

// chat returns the fixed details of chat c (0 <= c < chats) and its workspace.
func (k corpus) chat(c int) (workspace string, account schemas.Account, chat schemas.Chat) {
	r := rand.New(rand.NewPCG(seed, uint64(c)<<1|1))
	ws := c % k.workspaces
	owner := r.IntN(len(firstNames))
	account = schemas.Account{
		FullName: firstNames[owner] + " " + lastNames[ws%len(lastNames)],
		Email:    strings.ToLower(firstNames[owner]) + "@" + companies[ws%len(companies)] + ".com",
		Phone:    phone(r),
	}
	id := strconv.Itoa(10_010_000 + c)
	chat = schemas.Chat{
		FullName:         name(r),
		ResponsibleName:  firstNames[owner],
		ResponsibleEmail: account.Email,
		ChatURL:          "https://app.timelines.ai/chat/" + id + "/messages/",
		ChatID:           id,
		IsGroup:          r.IntN(10) == 0,
	}
	if !chat.IsGroup {
		chat.Phone = phone(r)
	}
	return workspaceID(ws), account, chat
}

func workspaceID(ws int) string { return fmt.Sprintf("ws_%04d", ws) }

func name(r *rand.Rand) string {
	return firstNames[r.IntN(len(firstNames))] + " " + lastNames[r.IntN(len(lastNames))]
}

func phone(r *rand.Rand) string { return fmt.Sprintf("+9725%08d", r.IntN(100_000_000)) }

// chatOf spreads events over the chats uniformly and deterministically.
func (k corpus) chatOf(i int) int {
	return rand.New(rand.NewPCG(seed, uint64(i)<<1)).IntN(k.chats)
}

// event returns event i, in chat c, at instant at. Its message id ends in i, so
// a receiver can tell which event a delivery carries (messageIndex).
func (k corpus) event(i, c int, at time.Time) schemas.Event {
	ws, account, chat := k.chat(c)
	r := rand.New(rand.NewPCG(seed+1, uint64(i)))
	id := formatID(r.Uint64(), i)
	contact := schemas.Party{FullName: chat.FullName, Phone: chat.Phone}
	if chat.IsGroup {
		contact = schemas.Party{FullName: name(r), Phone: phone(r)}
	}
	owner := schemas.Party{FullName: account.FullName, Phone: account.Phone}
	msg := schemas.EventMessage{
		MessageID: id,
		Direction: schemas.DirectionReceived, Sender: contact, Recipient: owner,
		Timestamp: schemas.Timestamp{Time: at},
		Text:      text(r),
		Permalink: fmt.Sprintf("https://app.timelines.ai/permalink/%08x-%04x-%04x-%04x-%012x/",
			r.Uint32(), r.Uint32()&0xffff, r.Uint32()&0xffff, r.Uint32()&0xffff, r.Uint64()&0xffffffffffff),
	}
	if r.IntN(2) == 0 {
		msg.Direction, msg.Sender, msg.Recipient = schemas.DirectionSent, owner, contact
	}
	chat.IsNewChat = r.IntN(100) == 0
	return schemas.Event{WorkspaceID: ws, WhatsAppAccount: account, Chat: chat, Message: msg}
}

// messageID is the message id of event i, without building the event.
func messageID(i int) string {
	return formatID(rand.New(rand.NewPCG(seed+1, uint64(i))).Uint64(), i)
}

func formatID(random uint64, i int) string { return fmt.Sprintf("%016X%010d", random, i) }

// messageIndex returns the i of a message id made by event.
func messageIndex(id string) (int, bool) {
	if len(id) < 10 {
		return 0, false
	}
	i, err := strconv.Atoi(id[len(id)-10:])
	return i, err == nil
}

// text is a chat message: mostly a few words, one in eight a paragraph.
func text(r *rand.Rand) string {
	n := 2 + r.IntN(10)
	if r.IntN(8) == 0 {
		n = 30 + r.IntN(50)
	}
	var b strings.Builder
	for j := range n {
		if j > 0 {
			if r.IntN(12) == 0 {
				b.WriteString(".\n")
			} else {
				b.WriteByte(' ')
			}
		}
		b.WriteString(words[r.IntN(len(words))])
	}
	if r.IntN(4) == 0 {
		b.WriteString(" " + emoji[r.IntN(len(emoji))])
	}
	return b.String()
}

// rawBytes is what a buffered message must keep at the least: the bytes of the
// fields its payload is rendered from, with the timestamp as 8 bytes. The
// chat's and account's details are kept once per window, not per message, so
// they are not counted.
func rawBytes(m schemas.EventMessage) int {
	return len(m.MessageID) + len(m.Direction) + 8 + len(m.Sender.FullName) + len(m.Sender.Phone) +
		len(m.Recipient.FullName) + len(m.Recipient.Phone) + len(m.Text) + len(m.Permalink)
}

// entry is what the processor would append for ev under the webhook epoch.
func entry(ev schemas.Event, offset int64, g webhook.Granularity, epoch int64) windowing.Entry {
	m := ev.Message
	return windowing.Entry{
		Offset: offset, Workspace: ev.WorkspaceID, Epoch: epoch, Granularity: g,
		Account: ev.WhatsAppAccount, Chat: ev.Chat,
		Message: windowing.Message{ID: m.MessageID, Direction: m.Direction, At: m.Timestamp.Time,
			Sender: m.Sender, Recipient: m.Recipient, Text: m.Text, Permalink: m.Permalink},
	}
}
