package schemas

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

var wantInstant = time.Date(2021, 2, 24, 16, 25, 29, 0, time.UTC)

// acceptedInputs are Go values of every accepted form, each wantInstant.
var acceptedInputs = []struct {
	name string
	in   any
}{
	{"rfc3339 Z", "2021-02-24T16:25:29Z"},
	{"rfc3339 +00:00", "2021-02-24T16:25:29+00:00"},
	{"rfc3339 +02:00", "2021-02-24T18:25:29+02:00"},
	{"rfc3339 negative offset", "2021-02-24T11:25:29-05:00"},
	{"rfc3339 fractional zero", "2021-02-24T16:25:29.000Z"},
	{"wire layout", "2021-02-24T16:25:29+0000"},
	{"wire layout other offset", "2021-02-24T18:25:29+0200"},
	{"space separated", "2021-02-24 18:25:29 +0200"},
	{"epoch seconds int64", int64(1614183929)},
	{"epoch seconds int", 1614183929},
	{"epoch seconds int32", int32(1614183929)},
	{"epoch seconds uint", uint(1614183929)},
	{"epoch seconds uint32", uint32(1614183929)},
	{"epoch milliseconds uint64", uint64(1614183929000)},
	{"epoch seconds float64", float64(1614183929)},
	{"epoch milliseconds int64", int64(1614183929000)},
	{"epoch milliseconds float64", float64(1614183929000)},
	{"epoch seconds json.Number", json.Number("1614183929")},
	{"epoch milliseconds json.Number", json.Number("1614183929000")},
	{"epoch seconds exponent json.Number", json.Number("1.614183929e9")},
	{"time.Time in another zone", wantInstant.In(time.FixedZone("x", 3600))},
	{"Timestamp", Timestamp{wantInstant}},
}

func TestParseTimestampAcceptedForms(t *testing.T) {
	for _, tt := range acceptedInputs {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTimestamp(tt.in)
			if err != nil {
				t.Fatalf("ParseTimestamp(%#v): %v", tt.in, err)
			}
			if !got.Equal(wantInstant) {
				t.Errorf("ParseTimestamp(%#v) = %s, want %s", tt.in, got, wantInstant)
			}
			if got.Location() != time.UTC {
				t.Errorf("ParseTimestamp(%#v) location = %s, want UTC", tt.in, got.Location())
			}
		})
	}
}

// TestTimestampUnmarshalJSONAcceptedForms: every accepted input, as JSON, and
// what only JSON has.
func TestTimestampUnmarshalJSONAcceptedForms(t *testing.T) {
	inputs := []string{
		`"2021-02-24T16:25:29\u002B0000"`, // an escaped string
		`1614183929.0`,                    // epoch seconds with a zero fraction
	}
	for _, tt := range acceptedInputs {
		data, err := json.Marshal(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, string(data))
	}
	for _, in := range inputs {
		var ts Timestamp
		if err := json.Unmarshal([]byte(in), &ts); err != nil {
			t.Errorf("unmarshalling %s: %v", in, err)
		} else if !ts.Equal(wantInstant) {
			t.Errorf("unmarshalling %s = %s, want %s", in, ts.Time, wantInstant)
		}
	}
}

func TestParseTimestampRejects(t *testing.T) {
	tests := []struct {
		name string
		in   any
	}{
		{"empty", ""},
		{"words", "yesterday"},
		{"date only", "2021-02-24"},
		{"no offset", "2021-02-24T16:25:29"},
		{"month 13", "2021-13-24T16:25:29Z"},
		{"day 30 of february", "2021-02-30T16:25:29+0000"},
		{"hour 25", "2021-02-24 25:25:29 +0000"},
		{"slashes", "2021/02/24 16:25:29"},
		{"rfc1123", "Wed, 24 Feb 2021 16:25:29 GMT"},
		{"numeric string", "1614183929"},
		{"zero", 0},
		{"negative", int64(-1614183929)},
		{"negative float", -1.5},
		{"negative float32", float32(-1.5)},
		{"uint64 beyond int64", uint64(1 << 63)},
		{"milliseconds beyond year 9999", int64(1e15)},
		{"year 0 in UTC", "0000-01-01T00:30:00+01:00"},
		{"bool", true},
		{"nil", nil},
		{"not a number json.Number", json.Number("abc")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTimestamp(tt.in)
			if err == nil {
				t.Fatalf("ParseTimestamp(%#v) = %s, want an error", tt.in, got)
			}
			if !errors.Is(err, errTimestamp) {
				t.Errorf("error %q does not wrap errTimestamp", err)
			}
			if !strings.Contains(err.Error(), "accepted: RFC 3339") {
				t.Errorf("error %q does not list the accepted forms", err)
			}
		})
	}
}

func TestTimestampUnmarshalJSONRejects(t *testing.T) {
	tests := []struct {
		name string
		json string
	}{
		{"garbage string", `"soon"`},
		{"bool", `true`},
		{"object", `{"t":1}`},
		{"negative", `-5`},
		{"zero", `0`},
		{"bad date", `"2021-02-24T16:25:61Z"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ts Timestamp
			err := json.Unmarshal([]byte(tt.json), &ts)
			if err == nil {
				t.Fatalf("unmarshalling %s = %s, want an error", tt.json, ts.Time)
			}
			if !errors.Is(err, errTimestamp) {
				t.Errorf("error %q does not wrap errTimestamp", err)
			}
		})
	}
}

func TestTimestampMarshalJSON(t *testing.T) {
	tests := []struct {
		name string
		in   time.Time
		want string
	}{
		{"utc", wantInstant, `"2021-02-24T16:25:29+0000"`},
		{"other zone is converted to UTC", wantInstant.In(time.FixedZone("IST", 2*3600)), `"2021-02-24T16:25:29+0000"`},
		{"sub-second precision is dropped", wantInstant.Add(999 * time.Millisecond), `"2021-02-24T16:25:29+0000"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := json.Marshal(Timestamp{tt.in})
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("json.Marshal = %s, want %s", got, tt.want)
			}
			text, err := Timestamp{tt.in}.MarshalText()
			if err != nil {
				t.Fatal(err)
			}
			if `"`+string(text)+`"` != tt.want {
				t.Errorf("MarshalText = %s, want %s", text, tt.want)
			}
		})
	}
}

func TestTimestampEpochBoundary(t *testing.T) {
	tests := []struct {
		name string
		in   int64
		want time.Time
	}{
		{"just below 1e11 is seconds", 99_999_999_999, time.Unix(99_999_999_999, 0).UTC()},
		{"1e11 is milliseconds", 100_000_000_000, time.UnixMilli(100_000_000_000).UTC()},
		{"one second", 1, time.Unix(1, 0).UTC()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTimestamp(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(tt.want) {
				t.Errorf("ParseTimestamp(%d) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}
