package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/outbound-webhooks/outbound/schemas"
)

// granularities are handed to workspaces in turn: workspace w gets
// granularities[w % 5].
var granularities = []string{"none", "1h", "6h", "12h", "24h"}

// kind is what an event is made to be.
type kind int

const (
	text       kind = iota // text, sometimes with emoji: deliverable
	attachment             // skipped by the worker
	empty                  // no text: skipped
	invalid                // not JSON: dead-lettered
)

// plan is the run's input, fixed by the seed before anything is produced: which
// chat each event is in and what it is, so the checks know what must arrive.
type plan struct {
	workspaces, chats int
	chat              []int // chat of event i
	kind              []kind
}

func newPlan(events, chats, workspaces int, seed uint64) *plan {
	r := rand.New(rand.NewPCG(seed, 0x0c4a05))
	p := &plan{workspaces: workspaces, chats: chats, chat: make([]int, events), kind: make([]kind, events)}
	for i := range events {
		p.chat[i] = r.IntN(chats)
		switch n := r.IntN(100); {
		case n < 4:
			p.kind[i] = attachment
		case n < 6:
			p.kind[i] = empty
		case n < 8:
			p.kind[i] = invalid
		}
	}
	return p
}

func workspaceID(w int) string {
	return fmt.Sprintf("ws-%02d-%s", w, granularities[w%len(granularities)])
}

func chatID(c int) string { return fmt.Sprintf("chat-%05d", c) }

func messageID(i int) string { return fmt.Sprintf("m%08d", i) }

// eventIndex is the inverse of messageID.
func eventIndex(id string) (int, bool) {
	var i int
	if _, err := fmt.Sscanf(id, "m%08d", &i); err != nil || messageID(i) != id {
		return 0, false
	}
	return i, true
}

func (p *plan) deliverable(i int) bool { return p.kind[i] == text }

// record is event i as the upstream chat service would publish it, stamped at.
func (p *plan) record(i int, at time.Time) *kgo.Record {
	c := p.chat[i]
	key := []byte(chatID(c))
	if p.kind[i] == invalid {
		return &kgo.Record{Key: key, Value: []byte(`{"workspace_id": "` + workspaceID(c%p.workspaces) + `", "message": `)}
	}
	ev := schemas.Event{
		WorkspaceID:     workspaceID(c % p.workspaces),
		WhatsAppAccount: schemas.Account{FullName: "Amnon Haha", Email: "amnon@acme.com", Phone: "+972500000000"},
		Chat: schemas.Chat{ChatID: chatID(c), FullName: "Chat " + chatID(c), ResponsibleName: "Amnon",
			ResponsibleEmail: "amnon@acme.com", ChatURL: "https://app.timelines.ai/chat/" + chatID(c) + "/messages/",
			Phone: "+97254" + fmt.Sprintf("%07d", c)},
		Message: schemas.EventMessage{MessageID: messageID(i), Direction: schemas.DirectionReceived,
			Timestamp: schemas.Timestamp{Time: at}, Sender: schemas.Party{FullName: "Chat " + chatID(c)},
			Recipient: schemas.Party{FullName: "Amnon Haha", Phone: "+972500000000"},
			Text:      strings.Repeat("hello ", 1+i%7) + []string{"", "🙂", "👍"}[i%3]},
	}
	switch p.kind[i] {
	case attachment:
		ev.Message.Attachments = []schemas.Attachment{{Type: "image", Filename: "a.jpg", Mimetype: "image/jpeg", Size: 1024, URL: "https://example.com/a.jpg"}}
	case empty:
		ev.Message.Text = ""
	}
	b, err := json.Marshal(ev)
	if err != nil {
		panic(err) // the event is built from strings and a time: it always encodes
	}
	return &kgo.Record{Key: key, Value: b}
}

// produce publishes the plan's events at an even pace over d, keyed by chat id,
// stamped with the instant they are produced. The producer is idempotent and
// retries without limit: a broker restart delays records, never duplicates them,
// so every duplicate the receiver sees is the worker's.
func (p *plan) produce(ctx context.Context, brokers []string, topic string, d time.Duration) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic),
		kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	start := time.Now()
	next := 0
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for next < len(p.chat) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		due := min(len(p.chat), int(float64(len(p.chat))*float64(time.Since(start))/float64(d))+1)
		batch := make([]*kgo.Record, 0, due-next)
		now := time.Now()
		for ; next < due; next++ {
			batch = append(batch, p.record(next, now))
		}
		if err := cl.ProduceSync(ctx, batch...).FirstErr(); err != nil {
			return fmt.Errorf("producing events: %w", err)
		}
	}
	return nil
}
