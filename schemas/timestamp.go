package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/outbound-webhooks/outbound/internal/clip"
)

// WireLayout is the timestamp layout of every payload: UTC, seconds, "+0000".
const WireLayout = "2006-01-02T15:04:05-0700"

// Timestamp is an instant that encodes as WireLayout in UTC and decodes from every
// accepted input form (see ParseTimestamp).
type Timestamp struct{ time.Time }

// Input layouts accepted besides RFC 3339. Go's parser also accepts fractional
// seconds right after the seconds field of any layout.
const (
	compactLayout = WireLayout                  // 2021-02-24T16:25:29+0000
	spacedLayout  = "2006-01-02 15:04:05 -0700" // 2021-02-24 18:25:29 +0200
)

// epochMillisThreshold separates epoch seconds from epoch milliseconds: a number at
// or above it is read as milliseconds. 1e11 seconds is the year 5138, and 1e11
// milliseconds is 1973-03-03, so no instant this system handles is ambiguous.
const epochMillisThreshold = 1e11

// maxEpochMillis is 9999-12-31T23:59:59.999Z, the last instant WireLayout can write.
const maxEpochMillis = 253402300799999

// acceptedForms is appended to every parse error.
const acceptedForms = `accepted: RFC 3339 ("2021-02-24T16:25:29Z", "2021-02-24T16:25:29+00:00", fractional seconds allowed), ` +
	`"2021-02-24T16:25:29+0000", "2021-02-24 16:25:29 +0000", ` +
	`or a positive number of epoch seconds (< 1e11) or epoch milliseconds (>= 1e11)`

// errTimestamp marks every error of ParseTimestamp and Timestamp.UnmarshalJSON.
var errTimestamp = errors.New("invalid timestamp")

// ParseTimestamp reads an instant from any accepted input form and returns it in UTC:
//
//   - a string in RFC 3339 ("2021-02-24T16:25:29Z", "2021-02-24T18:25:29+02:00",
//     "2021-02-24T16:25:29.000Z"),
//   - a string in WireLayout ("2021-02-24T16:25:29+0000", any offset),
//   - a string like "2021-02-24 18:25:29 +0200" (space separated, numeric offset),
//   - a number (json.Number, float64, float32, int, int32, int64, uint, uint32,
//     uint64) of epoch seconds, or of epoch milliseconds when it is 1e11 or more.
//     It must be positive; fractions are kept.
//
// A time.Time or Timestamp is returned as is, in UTC. Anything else is an error that
// quotes the given value and lists the accepted forms.
func ParseTimestamp(v any) (time.Time, error) {
	switch v := v.(type) {
	case string:
		return parseTimestampString(v)
	case json.Number:
		return parseEpochLiteral(string(v))
	case float32, float64:
		return epochFloat(reflect.ValueOf(v).Float())
	case int, int32, int64:
		return epochInt(reflect.ValueOf(v).Int())
	case uint, uint32, uint64:
		return epochUint(reflect.ValueOf(v).Uint())
	case time.Time:
		return v.UTC(), nil
	case Timestamp:
		return v.UTC(), nil
	case nil:
		return time.Time{}, timestampError("null", "no value")
	default:
		return time.Time{}, fmt.Errorf("parsing timestamp of type %T: %w; %s", v, errTimestamp, acceptedForms)
	}
}

// parseTimestampString picks the layout by shape, so that the hot path never
// parses twice or allocates an error it throws away.
func parseTimestampString(s string) (time.Time, error) {
	layout := ""
	switch {
	case len(s) < len("2006-01-02T15:04:05Z"):
	case s[10] == ' ':
		layout = spacedLayout
	case s[10] != 'T':
	case s[len(s)-1] == 'Z' || s[len(s)-3] == ':':
		layout = time.RFC3339
	default:
		layout = compactLayout
	}
	if layout == "" {
		return time.Time{}, timestampError(strconv.Quote(clip.String(s, 64)), "unknown form")
	}
	t, err := time.Parse(layout, s)
	if err != nil {
		return time.Time{}, timestampError(strconv.Quote(clip.String(s, 64)), parseErrorText(err))
	}
	t = t.UTC()
	if y := t.Year(); y < 1 || y > 9999 {
		return time.Time{}, timestampError(strconv.Quote(clip.String(s, 64)), "year outside 0001-9999 in UTC")
	}
	return t, nil
}

// parseErrorText shortens a time.ParseError, whose text repeats the input and layout.
func parseErrorText(err error) string {
	var pe *time.ParseError
	if !errors.As(err, &pe) {
		return err.Error()
	}
	if pe.Message != "" {
		return strings.TrimPrefix(pe.Message, ": ")
	}
	return "cannot parse " + strconv.Quote(clip.String(pe.ValueElem, 32)) + " as " + strconv.Quote(pe.LayoutElem)
}

// parseEpochLiteral reads a JSON number. Integers are read exactly; anything with a
// fraction or an exponent goes through float64 (microsecond precision for seconds).
func parseEpochLiteral(lit string) (time.Time, error) {
	if n, err := strconv.ParseInt(lit, 10, 64); err == nil {
		return epochInt(n)
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil {
		return time.Time{}, timestampError(strconv.Quote(clip.String(lit, 64)), "not a number")
	}
	return epochFloat(f)
}

// epochUint is epochInt for an unsigned number, which may be beyond int64.
func epochUint(n uint64) (time.Time, error) {
	if n > math.MaxInt64 {
		return time.Time{}, timestampError(strconv.FormatUint(n, 10), "out of range")
	}
	return epochInt(int64(n))
}

func epochInt(n int64) (time.Time, error) {
	switch {
	case n <= 0:
		return time.Time{}, timestampError(strconv.FormatInt(n, 10), "epoch must be positive")
	case n < epochMillisThreshold:
		return time.Unix(n, 0).UTC(), nil
	case n <= maxEpochMillis:
		return time.UnixMilli(n).UTC(), nil
	default:
		return time.Time{}, timestampError(strconv.FormatInt(n, 10), "epoch milliseconds beyond year 9999")
	}
}

func epochFloat(f float64) (time.Time, error) {
	lit := strconv.FormatFloat(f, 'g', -1, 64)
	switch {
	case math.IsNaN(f) || math.IsInf(f, 0):
		return time.Time{}, timestampError(lit, "not a finite number")
	case f <= 0:
		return time.Time{}, timestampError(lit, "epoch must be positive")
	case f < epochMillisThreshold:
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(math.Round(frac*1e9))).UTC(), nil
	case f <= maxEpochMillis:
		ms, frac := math.Modf(f)
		return time.UnixMilli(int64(ms)).Add(time.Duration(math.Round(frac * 1e6))).UTC(), nil
	default:
		return time.Time{}, timestampError(lit, "epoch milliseconds beyond year 9999")
	}
}

// timestampError says what was given (already quoted when it was a string) and why
// it was refused, and lists the accepted forms.
func timestampError(given, why string) error {
	return fmt.Errorf("parsing timestamp %s: %w: %s; %s", given, errTimestamp, why, acceptedForms)
}

// MarshalJSON writes the instant as a WireLayout string in UTC,
// e.g. "2021-02-24T16:25:29+0000". Sub-second precision is dropped.
func (t Timestamp) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, len(WireLayout)+2)
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, WireLayout)
	return append(b, '"'), nil
}

// UnmarshalJSON reads a JSON string or number in any form ParseTimestamp accepts.
// JSON null leaves t unchanged, as encoding/json does for other types.
func (t *Timestamp) UnmarshalJSON(data []byte) error {
	switch {
	case len(data) == 0:
		return timestampError("(empty)", "no value")
	case string(data) == "null":
		return nil
	case data[0] == '"':
		var s string
		if len(data) >= 2 && data[len(data)-1] == '"' && bytes.IndexByte(data, '\\') < 0 {
			s = string(data[1 : len(data)-1])
		} else if err := json.Unmarshal(data, &s); err != nil {
			return fmt.Errorf("parsing timestamp: %w: %w", errTimestamp, err)
		}
		parsed, err := parseTimestampString(s)
		if err != nil {
			return err
		}
		t.Time = parsed
		return nil
	case data[0] == '-' || (data[0] >= '0' && data[0] <= '9'):
		parsed, err := parseEpochLiteral(string(data))
		if err != nil {
			return err
		}
		t.Time = parsed
		return nil
	default:
		return timestampError(clip.String(string(data), 40), "not a string or a number")
	}
}

// MarshalText writes the instant as WireLayout in UTC, like MarshalJSON, so text
// encoders (map keys, loggers) agree with the wire form instead of time.Time's RFC 3339.
func (t Timestamp) MarshalText() ([]byte, error) {
	return t.UTC().AppendFormat(make([]byte, 0, len(WireLayout)), WireLayout), nil
}

// UnmarshalText reads any string form ParseTimestamp accepts.
func (t *Timestamp) UnmarshalText(text []byte) error {
	parsed, err := parseTimestampString(string(text))
	if err != nil {
		return err
	}
	t.Time = parsed
	return nil
}
