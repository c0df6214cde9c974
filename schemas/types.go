package schemas

import "encoding/json"

// The Go side of the wire contract. Field order follows the product spec so that
// encoding/json produces the payloads exactly as documented.

// Account is the WhatsApp account that sent or received the messages, and the
// teammate who connected it.
type Account struct {
	FullName string `json:"full_name"`
	Email    string `json:"email"`
	Phone    string `json:"phone"`
}

// Chat is the direct or group chat the messages belong to. IsGroup is true for a
// group chat; a group chat has an empty Phone.
type Chat struct {
	FullName         string `json:"full_name"`
	ResponsibleName  string `json:"responsible_name"`
	ResponsibleEmail string `json:"responsible_email"`
	ChatURL          string `json:"chat_url"`
	ChatID           string `json:"chat_id"`
	IsNewChat        bool   `json:"is_new_chat"`
	IsGroup          bool   `json:"is_group"`
	Phone            string `json:"phone"`
}

// Party is the sender or the recipient of a message.
type Party struct {
	FullName string `json:"full_name"`
	Phone    string `json:"phone"`
}

// Attachment describes a file attached to an input message. Messages with
// attachments are skipped: only text and emoji are delivered.
type Attachment struct {
	Type     string `json:"type"`
	Filename string `json:"filename"`
	Mimetype string `json:"mimetype"`
	Size     int64  `json:"size"`
	URL      string `json:"url"`
}

// Direction values of a message.
const (
	DirectionSent     = "sent"
	DirectionReceived = "received"
)

// EventMessage is the message inside an input event (chat.message.v1).
type EventMessage struct {
	MessageID   string       `json:"message_id"`
	Direction   string       `json:"direction"`
	Timestamp   Timestamp    `json:"timestamp"`
	Sender      Party        `json:"sender"`
	Recipient   Party        `json:"recipient"`
	Text        string       `json:"text"`
	Attachments []Attachment `json:"attachments,omitempty"`
	Permalink   string       `json:"permalink,omitempty"`
}

// Event is one chat.message.v1 record on the events topic (key = chat_id).
type Event struct {
	WorkspaceID     string       `json:"workspace_id"`
	WhatsAppAccount Account      `json:"whatsapp_account"`
	Chat            Chat         `json:"chat"`
	Message         EventMessage `json:"message"`
}

// Message is a message as delivered in a webhook payload.
type Message struct {
	Direction string    `json:"direction"`
	Timestamp Timestamp `json:"timestamp"`
	MessageID string    `json:"message_id"`
	Sender    Party     `json:"sender"`
	Recipient Party     `json:"recipient"`
	Text      string    `json:"text"`
}

// BundlePayload is the body of an aggregated delivery: one chat, one window.
type BundlePayload struct {
	WhatsAppAccount       Account   `json:"whatsapp_account"`
	Chat                  Chat      `json:"chat"`
	Messages              []Message `json:"messages"`
	FirstMessageTimestamp Timestamp `json:"first_message_timestamp"`
	LastMessageTimestamp  Timestamp `json:"last_message_timestamp"`
	Aggregation           string    `json:"aggregation"`
}

// MessagePayload is the body of a non-aggregated delivery: one message.
type MessagePayload struct {
	WhatsAppAccount Account `json:"whatsapp_account"`
	Chat            Chat    `json:"chat"`
	Message         Message `json:"message"`
}

// Control message types on the control topic (key = workspace_id).
const (
	TypeConfigure    = "webhook.configure"
	TypeEnable       = "webhook.enable"
	TypeDisable      = "webhook.disable"
	TypeDelete       = "webhook.delete"
	TypeAutoDisabled = "webhook.auto_disabled"
)

// Granularity values of webhook.configure.
var Granularities = []string{"none", "1h", "6h", "12h", "24h"}

// ControlMessage is any message on the control topic; Type says which fields apply.
// ID and At are filled by whoever publishes it.
type ControlMessage struct {
	Type        string     `json:"type"`
	ID          string     `json:"id,omitempty"`
	At          *Timestamp `json:"at,omitempty"`
	WorkspaceID string     `json:"workspace_id"`

	// webhook.configure
	URL         string `json:"url,omitempty"`
	Granularity string `json:"granularity,omitempty"`
	Enabled     *bool  `json:"enabled,omitempty"`
	OwnerEmail  string `json:"owner_email,omitempty"`
	Secret      string `json:"secret,omitempty"`

	// webhook.disable
	Reason string `json:"reason,omitempty"`

	// webhook.auto_disabled
	ConsecutiveErrors int    `json:"consecutive_errors,omitempty"`
	LastError         string `json:"last_error,omitempty"`
	// Epoch is the configuration epoch the publishing worker saw, so that an
	// auto-disable racing with a newer webhook.configure can be recognised as stale.
	Epoch int64 `json:"epoch,omitempty"`
}

// MarshalJSON writes an auto-disabled event's last_error even when it is empty:
// the schema requires the field there, and its omitempty tag, right for the
// other types, would drop it and make the event invalid.
func (m ControlMessage) MarshalJSON() ([]byte, error) {
	type fields ControlMessage // without this method
	if m.Type != TypeAutoDisabled {
		return json.Marshal(fields(m))
	}
	return json.Marshal(struct {
		fields
		LastError string `json:"last_error"`
	}{fields(m), m.LastError})
}
