package demo

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/outbound-webhooks/outbound/schemas"
)

// workspace is one customer of the demo and its webhook.
type workspace struct {
	id, granularity, owner string
	fails                  bool // its receiver answers 500 to every call
	account                schemas.Account
}

// planChat is one chat of a workspace.
type planChat struct {
	ws   int // index in plan.workspaces
	chat schemas.Chat
}

// planLine is one record of the traffic: a message, or a malformed record.
type planLine struct {
	wave       int
	chat       int // index in plan.chats
	direction  string
	member     string // who wrote a received group message
	text       string
	attachment *schemas.Attachment
	malformed  string // the record's raw bytes when it is not an event at all
}

// plan is the traffic the generator publishes, wave after wave.
type plan struct {
	workspaces []workspace
	chats      []planChat
	lines      []planLine
	waves      int
	gap        time.Duration
}

// newPlan returns the demo's traffic: three workspaces, direct and group
// chats, both directions, emoji and right-to-left text, one attachment and one
// malformed record. The short plan keeps the first two waves.
func newPlan(short bool) plan {
	p := plan{
		workspaces: []workspace{
			{id: "acme-travel", granularity: "none", owner: "noa@acme-travel.example",
				account: schemas.Account{FullName: "Noa Levi", Email: "noa@acme-travel.example", Phone: "+972501234567"}},
			{id: "globex-realty", granularity: "1h", owner: "maria@globex-realty.example",
				account: schemas.Account{FullName: "María García", Email: "maria@globex-realty.example", Phone: "+34600111222"}},
			{id: "initech", granularity: "none", owner: "bill.lumbergh@initech.example", fails: true,
				account: schemas.Account{FullName: "Peter Gibbons", Email: "peter@initech.example", Phone: "+15125550100"}},
		},
		waves: 4,
		// Longer than a "1h" window (1 s): every wave opens new windows.
		gap: 1200 * time.Millisecond,
	}
	if short {
		p.waves = 2
	}
	chat := func(ws int, id, name, phone string) int {
		a := p.workspaces[ws].account
		p.chats = append(p.chats, planChat{ws: ws, chat: schemas.Chat{FullName: name, ResponsibleName: a.FullName,
			ResponsibleEmail: a.Email, ChatURL: "https://app.timelines.ai/chat/" + id + "/messages/", ChatID: id,
			IsGroup: phone == "", Phone: phone}})
		return len(p.chats) - 1
	}
	yossi := chat(0, "10010001", "Yossi Cohen", "+972541112233")
	eilat := chat(0, "10010002", "Eilat trip 🏖️", "")
	ahmed := chat(1, "20010001", "Ahmed Hassan", "+971501234567")
	house := chat(1, "20010002", "Open house, Calle Mayor 12", "")
	milton := chat(2, "30010001", "Milton Waddams", "+15125550123")

	const in, out = schemas.DirectionReceived, schemas.DirectionSent
	all := []planLine{
		{wave: 0, chat: yossi, direction: in, text: "שלום! ההזמנה שלי לאילת עדיין בתוקף?"},
		{wave: 0, chat: yossi, direction: out, text: "כן, הכל מאושר ✅ Check-in from 15:00"},
		{wave: 0, chat: ahmed, direction: in, text: "مرحبا، هل الشقة في شارع الملك ما زالت متاحة؟"},
		{wave: 0, chat: ahmed, direction: out, text: "Yes! Viewings tomorrow at 10:00 or 14:00 🏠"},
		{wave: 0, chat: house, direction: in, member: "Lucía Fernández", text: "Is parking included? 🚗"},
		{wave: 0, chat: house, direction: out, text: "One garage space, yes"},
		{wave: 0, chat: house, direction: in, member: "Tom Becker", text: "Can we bring our dog? 🐕"},
		{wave: 0, chat: milton, direction: in, text: "Excuse me, I believe you have my stapler 📎"},

		{wave: 1, chat: yossi, direction: in, text: "מעולה, תודה רבה! 🙏"},
		{wave: 1, chat: eilat, direction: in, member: "Avi Ben-David", text: "Who's bringing the snorkels? 🤿"},
		{wave: 1, chat: ahmed, direction: in, text: "14:00 works for me 👍"},
		// Only text and emoji are delivered: the caption does not save it.
		{wave: 1, chat: ahmed, direction: out, text: "Here is the floor plan 📐", attachment: &schemas.Attachment{Type: "document",
			Filename: "floorplan.pdf", Mimetype: "application/pdf", Size: 482133, URL: "https://files.example/floorplan.pdf"}},
		{wave: 1, chat: ahmed, direction: out, text: "See you at 14:00, María"},
		{wave: 1, chat: house, direction: out, text: "Of course, pets are welcome 🐾"},
		{wave: 1, chat: milton, direction: out, text: "Milton, we're moving your desk to storage room B"},
		// An upstream producer cut this one at its buffer size: not JSON at all.
		{wave: 1, chat: yossi, malformed: `{"workspace_id":"acme-travel","chat":{"chat_id":"10010001"},"message":{"message_id":"wamid-cut","text":"Can I change my booking to`},

		{wave: 2, chat: eilat, direction: out, text: "They're included in the boat tour 😊"},
		{wave: 2, chat: eilat, direction: in, member: "Shira Mizrahi", text: "🐠🐠🐠"},
		{wave: 2, chat: ahmed, direction: in, text: "شكراً جزيلاً 🌹"},
		{wave: 2, chat: house, direction: in, member: "Lucía Fernández", text: "Perfect, see you Saturday!"},
		{wave: 2, chat: house, direction: in, member: "Tom Becker", text: "👍"},
		{wave: 2, chat: milton, direction: in, text: "I could set the building on fire 🔥"},

		{wave: 3, chat: yossi, direction: out, text: "נסיעה טובה! 🚗"},
		{wave: 3, chat: house, direction: out, text: "Doors open at 11:00 🔑"},
	}
	for _, l := range all {
		if l.wave < p.waves {
			p.lines = append(p.lines, l)
		}
	}
	return p
}

// failing returns the workspaces whose receiver fails.
func (p plan) failing() []workspace {
	var out []workspace
	for _, ws := range p.workspaces {
		if ws.fails {
			out = append(out, ws)
		}
	}
	return out
}

// sentCounts is what the generator published, and so what the worker must do.
type sentCounts struct {
	Events      int // records on the events topic
	Attachments int // messages with an attachment: skipped
	Malformed   int // records that are not events: dead-lettered
	ForFailing  int // messages for the webhook whose receiver fails

	singles        int             // deliverable messages of "none" webhooks
	windowed       map[string]bool // round and chat of deliverable messages of windowed webhooks
	deliverableIDs []string        // message ids the healthy webhooks must receive
}

// MinDeliveries is the fewest successful webhook calls the traffic needs: one per
// deliverable message of a "none" webhook, and at least one bundle per chat and
// round of a windowed one (a chat's messages of one round may span windows).
func (c sentCounts) MinDeliveries() int { return c.singles + len(c.windowed) }

// tally counts line i of round r, once it is published.
func (p plan) tally(c *sentCounts, round, i int) {
	l := p.lines[i]
	ws := p.workspaces[p.chats[l.chat].ws]
	c.Events++
	switch {
	case l.malformed != "":
		c.Malformed++
	case l.attachment != nil:
		c.Attachments++
	case ws.fails:
		c.ForFailing++
	default:
		c.deliverableIDs = append(c.deliverableIDs, messageID(round, i))
		if ws.granularity == "none" {
			c.singles++
			break
		}
		if c.windowed == nil {
			c.windowed = map[string]bool{}
		}
		c.windowed[fmt.Sprintf("%d/%d", round, l.chat)] = true
	}
}

// counts is what one round of the plan publishes.
func (p plan) counts() sentCounts {
	var c sentCounts
	for i := range p.lines {
		p.tally(&c, 0, i)
	}
	return c
}

func (p plan) attachmentNotes() []string {
	var notes []string
	for _, l := range p.lines {
		if l.attachment != nil {
			c := p.chats[l.chat]
			notes = append(notes, fmt.Sprintf("%s, chat %q: %s (%s)", p.workspaces[c.ws].id, c.chat.FullName,
				l.attachment.Filename, l.attachment.Mimetype))
		}
	}
	return notes
}

// messageID is the id of line i of the plan in round r.
func messageID(round, i int) string { return fmt.Sprintf("wamid-r%d-%02d", round+1, i+1) }

// record builds the events-topic record of line i in round r at time at.
func (p plan) record(round, i int, at time.Time, newChat bool) kafka.Message {
	l := p.lines[i]
	c := p.chats[l.chat]
	key := []byte(c.chat.ChatID)
	if l.malformed != "" {
		return kafka.Message{Key: key, Value: []byte(l.malformed)}
	}
	acct := p.workspaces[c.ws].account
	chat := c.chat
	chat.IsNewChat = newChat
	// A group chat has no phone numbers, on either side.
	phone := func(s string) string {
		if chat.IsGroup {
			return ""
		}
		return s
	}
	us := schemas.Party{FullName: acct.FullName, Phone: phone(acct.Phone)}
	them := schemas.Party{FullName: chat.FullName, Phone: chat.Phone}
	if l.member != "" {
		them.FullName = l.member
	}
	sender, recipient := them, us
	if l.direction == schemas.DirectionSent {
		sender, recipient = us, schemas.Party{FullName: chat.FullName, Phone: chat.Phone}
	}
	id := messageID(round, i)
	ev := schemas.Event{
		WorkspaceID:     p.workspaces[c.ws].id,
		WhatsAppAccount: acct,
		Chat:            chat,
		Message: schemas.EventMessage{MessageID: id, Direction: l.direction, Timestamp: schemas.Timestamp{Time: at.UTC()},
			Sender: sender, Recipient: recipient, Text: l.text,
			Permalink: "https://app.timelines.ai/permalink/" + id + "/"},
	}
	if l.attachment != nil {
		ev.Message.Attachments = []schemas.Attachment{*l.attachment}
	}
	// Marshalling these plain structs cannot fail.
	value, _ := json.Marshal(ev)
	return kafka.Message{Key: key, Value: value}
}
