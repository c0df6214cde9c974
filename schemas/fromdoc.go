package schemas

import (
	"encoding/json"
	"strconv"
)

// eventFromDoc builds an Event from the generic document DecodeEvent has just
// validated, instead of parsing the JSON a second time with encoding/json: that
// second parse cost as much as the validation itself. The schema has guaranteed
// every type, so the conversion only reads; absent and null fields become zero
// values, as encoding/json would make them. It reads exactly the keys the schema
// checked (no case-insensitive matching, last duplicate key wins), so what is
// decoded is what was validated.
//
// Keep in step with the Event type: TestEventFromDocMatchesUnmarshal compares it
// with encoding/json, and TestFullEventCoversEveryField makes sure that comparison
// sees every field.
func eventFromDoc(doc any) (Event, error) {
	root, _ := doc.(map[string]any)
	account := object(root, "whatsapp_account")
	chat := object(root, "chat")
	msg := object(root, "message")
	ev := Event{
		WorkspaceID: str(root, "workspace_id"),
		WhatsAppAccount: Account{
			FullName: str(account, "full_name"),
			Email:    str(account, "email"),
			Phone:    str(account, "phone"),
		},
		Chat: Chat{
			FullName:         str(chat, "full_name"),
			ResponsibleName:  str(chat, "responsible_name"),
			ResponsibleEmail: str(chat, "responsible_email"),
			ChatURL:          str(chat, "chat_url"),
			ChatID:           str(chat, "chat_id"),
			IsNewChat:        boolean(chat, "is_new_chat"),
			IsGroup:          boolean(chat, "is_group"),
			Phone:            str(chat, "phone"),
		},
		Message: EventMessage{
			MessageID: str(msg, "message_id"),
			Direction: str(msg, "direction"),
			Sender:    party(object(msg, "sender")),
			Recipient: party(object(msg, "recipient")),
			Text:      str(msg, "text"),
			Permalink: str(msg, "permalink"),
		},
	}
	ts, err := ParseTimestamp(msg["timestamp"])
	if err != nil {
		return Event{}, err
	}
	ev.Message.Timestamp = Timestamp{ts}
	if list, ok := msg["attachments"].([]any); ok {
		ev.Message.Attachments = make([]Attachment, len(list))
		for i, item := range list {
			a, _ := item.(map[string]any)
			ev.Message.Attachments[i] = Attachment{
				Type:     str(a, "type"),
				Filename: str(a, "filename"),
				Mimetype: str(a, "mimetype"),
				Size:     integer(a, "size"),
				URL:      str(a, "url"),
			}
		}
	}
	return ev, nil
}

// controlFromDoc builds a ControlMessage from the document DecodeControl has just
// validated, for the same reason as eventFromDoc: encoding/json would match keys
// case-insensitively, so {"workspace_id":"a","Workspace_ID":"b"} would pass the
// schema as workspace a and decode as workspace b.
//
// Keep in step with the ControlMessage type: TestControlFromDocMatchesUnmarshal.
func controlFromDoc(doc any) (ControlMessage, error) {
	m, _ := doc.(map[string]any)
	msg := ControlMessage{
		Type:              str(m, "type"),
		ID:                str(m, "id"),
		WorkspaceID:       str(m, "workspace_id"),
		URL:               str(m, "url"),
		Granularity:       str(m, "granularity"),
		OwnerEmail:        str(m, "owner_email"),
		Secret:            str(m, "secret"),
		Reason:            str(m, "reason"),
		ConsecutiveErrors: int(integer(m, "consecutive_errors")),
		LastError:         str(m, "last_error"),
		Epoch:             integer(m, "epoch"),
	}
	if v, ok := m["enabled"].(bool); ok {
		msg.Enabled = &v
	}
	if v, ok := m["at"]; ok && v != nil {
		at, err := ParseTimestamp(v)
		if err != nil {
			return ControlMessage{}, err
		}
		msg.At = &Timestamp{at}
	}
	return msg, nil
}

func party(m map[string]any) Party {
	return Party{FullName: str(m, "full_name"), Phone: str(m, "phone")}
}

// object, str, boolean and integer read a field of a validated document; a missing
// field, a null, or a nil parent gives the zero value.
func object(m map[string]any, key string) map[string]any {
	v, _ := m[key].(map[string]any)
	return v
}

func str(m map[string]any, key string) string {
	v, _ := m[key].(string)
	return v
}

func boolean(m map[string]any, key string) bool {
	v, _ := m[key].(bool)
	return v
}

// integer reads a number the schema has checked to be an integer within its range,
// including the forms 3.0 and 3e2 that json.Number.Int64 refuses.
func integer(m map[string]any, key string) int64 {
	switch v := m[key].(type) {
	case json.Number:
		if n, err := v.Int64(); err == nil {
			return n
		}
		if f, err := strconv.ParseFloat(string(v), 64); err == nil {
			return int64(f)
		}
	case float64:
		return int64(v)
	}
	return 0
}
