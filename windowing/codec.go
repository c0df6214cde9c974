package windowing

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/outbound-webhooks/outbound/schemas"
)

// The stored form of a message and of a window's chat details: length-prefixed
// fields in a fixed order. It is about half the size of the JSON it replaces and
// costs no reflection; buffered messages are the bulk of Redis memory.

// The first byte of a record says how to read the rest. Details are still
// version 1. A message is written as version 2, which folds the schema's two
// directions into that byte (a string costs 5 to 9 bytes a message, and
// Redis memory is the price of every buffered one); any other direction
// follows as a string. Version 1 messages, from windows written before the
// upgrade, are still read.
const (
	codecVersion    = 1
	codecV2         = 2 // the direction follows as a string
	codecV2Sent     = 3
	codecV2Received = 4
)

var errCorrupt = errors.New("corrupt record")

type encoder struct{ b []byte }

func (e *encoder) str(s string) {
	e.b = binary.AppendUvarint(e.b, uint64(len(s)))
	e.b = append(e.b, s...)
}

func (e *encoder) num(v int64) { e.b = binary.AppendVarint(e.b, v) }

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) str() string {
	n, k := binary.Uvarint(d.b)
	if k <= 0 || uint64(len(d.b)-k) < n {
		d.err = errCorrupt
		d.b = nil
		return ""
	}
	s := string(d.b[k : k+int(n)])
	d.b = d.b[k+int(n):]
	return s
}

func (d *decoder) num() int64 {
	v, k := binary.Varint(d.b)
	if k <= 0 {
		d.err = errCorrupt
		d.b = nil
		return 0
	}
	d.b = d.b[k:]
	return v
}

// encodeEntry is a message as a window packs it: its id, then its record with
// its arrival order (the record offset), which breaks timestamp ties so a
// bundle keeps the partition's order. append.lua pushes each entry to its
// window's list, which Redis packs at a few bytes per element, because a hash
// field of its own costs Redis about 75 B per message: a third of a typical
// message, and buffered messages are the bulk of Redis memory. Windows written
// before lists concatenated entries into chunks (decodeChunk reads both).
func encodeEntry(m Message, offset int64) []byte {
	e := encoder{b: make([]byte, 0, 64+len(m.ID)+len(m.Text)+len(m.Permalink))}
	e.str(m.ID)
	e.message(m, offset)
	return e.b
}

func (e *encoder) message(m Message, offset int64) {
	switch m.Direction {
	case schemas.DirectionSent:
		e.b = append(e.b, codecV2Sent)
	case schemas.DirectionReceived:
		e.b = append(e.b, codecV2Received)
	default:
		e.b = append(e.b, codecV2)
		e.str(m.Direction)
	}
	e.num(m.At.UnixMilli())
	e.num(offset)
	e.str(m.Sender.FullName)
	e.str(m.Sender.Phone)
	e.str(m.Recipient.FullName)
	e.str(m.Recipient.Phone)
	e.str(m.Text)
	e.str(m.Permalink)
}

// decodeMessage reads a record stored under its id, one hash field per message,
// as windows and bundles written before packing hold them.
func decodeMessage(id string, b []byte) (Message, int64, error) {
	d := decoder{b: b}
	m, offset := d.message(id)
	return m, offset, d.err
}

// stored is a message read back with its arrival offset.
type stored struct {
	m      Message
	offset int64
}

// decodeChunk reads a chunk of entries (encodeEntry) in the order appended.
func decodeChunk(b []byte) ([]stored, error) {
	d := decoder{b: b}
	var out []stored
	for len(d.b) > 0 && d.err == nil {
		m, offset := d.message(d.str())
		out = append(out, stored{m, offset})
	}
	return out, d.err
}

func (d *decoder) message(id string) (Message, int64) {
	if len(d.b) == 0 {
		d.err = errCorrupt
		return Message{}, 0
	}
	version := d.b[0]
	d.b = d.b[1:]
	m := Message{ID: id}
	switch version {
	case codecVersion, codecV2:
		m.Direction = d.str()
	case codecV2Sent:
		m.Direction = schemas.DirectionSent
	case codecV2Received:
		m.Direction = schemas.DirectionReceived
	default:
		d.err = errCorrupt
		d.b = nil
		return Message{}, 0
	}
	m.At = time.UnixMilli(d.num()).UTC()
	offset := d.num()
	m.Sender = schemas.Party{FullName: d.str(), Phone: d.str()}
	m.Recipient = schemas.Party{FullName: d.str(), Phone: d.str()}
	m.Text = d.str()
	m.Permalink = d.str()
	if d.err != nil {
		return Message{}, 0
	}
	return m, offset
}

// encodeDetails stores the account and chat details once per window. IsNewChat
// is kept apart (a window flag) because it is sticky: true if any message had it.
func encodeDetails(a schemas.Account, c schemas.Chat) []byte {
	e := encoder{b: make([]byte, 0, 160)}
	e.b = append(e.b, codecVersion)
	e.str(a.FullName)
	e.str(a.Email)
	e.str(a.Phone)
	e.str(c.FullName)
	e.str(c.ResponsibleName)
	e.str(c.ResponsibleEmail)
	e.str(c.ChatURL)
	e.str(c.ChatID)
	group := int64(0)
	if c.IsGroup {
		group = 1
	}
	e.num(group)
	e.str(c.Phone)
	return e.b
}

func decodeDetails(b []byte) (schemas.Account, schemas.Chat, error) {
	if len(b) == 0 || b[0] != codecVersion {
		return schemas.Account{}, schemas.Chat{}, errCorrupt
	}
	d := decoder{b: b[1:]}
	a := schemas.Account{FullName: d.str(), Email: d.str(), Phone: d.str()}
	c := schemas.Chat{
		FullName:         d.str(),
		ResponsibleName:  d.str(),
		ResponsibleEmail: d.str(),
		ChatURL:          d.str(),
		ChatID:           d.str(),
	}
	c.IsGroup = d.num() == 1
	c.Phone = d.str()
	return a, c, d.err
}
