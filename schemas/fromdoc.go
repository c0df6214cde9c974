package schemas

import (
	"encoding/json"
	"strconv"
)

// controlFromDoc builds a ControlMessage from the document DecodeControl has just
// validated, instead of parsing the JSON a second time with encoding/json, which
// would also match keys case-insensitively: {"workspace_id":"a","Workspace_ID":"b"}
// would pass the schema as workspace a and decode as workspace b. The schema has
// guaranteed every type, so the conversion only reads; absent and null fields
// become zero values, as encoding/json would make them.
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

// str and integer read a field of a validated document; a missing field, a null,
// or a nil parent gives the zero value.
func str(m map[string]any, key string) string {
	v, _ := m[key].(string)
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
