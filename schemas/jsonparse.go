package schemas

import (
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"
)

// parseJSON decodes one JSON value into the generic form the validator takes:
// map[string]any, []any, string, json.Number, bool and nil. It gives the same
// result and accepts the same inputs as jsonschema.UnmarshalJSON (encoding/json
// with UseNumber, then nothing but whitespace), which FuzzParseJSON checks, except
// that it refuses an object with a key twice, at a third of the cost: it scans
// the input once, copies it into one string and slices every key, plain string
// and number out of that copy instead of allocating each. Strings with escapes
// or invalid UTF-8 are rare and handed to encoding/json. Its scanner (the
// jsonParser methods) is also what eventDecoder reads events with.
//
// Decoded strings share the one copy of the input, so a value kept from the
// result keeps the whole input alive; the input slice itself is not retained.
func parseJSON(data []byte) (any, error) {
	p := jsonParser{s: string(data)}
	p.skipSpace()
	v, err := p.value()
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.i < len(p.s) {
		return nil, p.syntaxError("after top-level value")
	}
	return v, nil
}

// maxJSONDepth matches encoding/json's nesting limit.
const maxJSONDepth = 10000

var errJSONEnd = errors.New("unexpected end of JSON input")

type jsonParser struct {
	s     string
	i     int
	depth int
}

func (p *jsonParser) syntaxError(context string) error {
	if p.i >= len(p.s) {
		return errJSONEnd
	}
	return errors.New("invalid character " + quoteChar(p.s[p.i]) + " " + context + " at offset " + strconv.Itoa(p.i))
}

func quoteChar(c byte) string {
	if c >= 0x20 && c < 0x7f && c != '\'' {
		return "'" + string(rune(c)) + "'"
	}
	return `'\x` + strconv.FormatUint(uint64(c)>>4, 16) + strconv.FormatUint(uint64(c)&0xf, 16) + "'"
}

func (p *jsonParser) skipSpace() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonParser) value() (any, error) {
	if p.i >= len(p.s) {
		return nil, errJSONEnd
	}
	switch c := p.s[p.i]; {
	case c == '{':
		return p.object()
	case c == '[':
		return p.array()
	case c == '"':
		return p.str()
	case c == '-' || (c >= '0' && c <= '9'):
		lit, err := p.number()
		return json.Number(lit), err
	case c == 't':
		return true, p.literal("true")
	case c == 'f':
		return false, p.literal("false")
	case c == 'n':
		return nil, p.literal("null")
	default:
		return nil, p.syntaxError("looking for beginning of value")
	}
}

func (p *jsonParser) literal(lit string) error {
	for k := 0; k < len(lit); k++ {
		if p.i >= len(p.s) {
			return errJSONEnd
		}
		if p.s[p.i] != lit[k] {
			return p.syntaxError("in literal " + lit)
		}
		p.i++
	}
	return nil
}

func (p *jsonParser) enter() error {
	p.depth++
	if p.depth > maxJSONDepth {
		return errors.New("exceeded max depth at offset " + strconv.Itoa(p.i))
	}
	return nil
}

func (p *jsonParser) object() (any, error) {
	empty, err := p.open('}')
	if err != nil {
		return nil, err
	}
	obj := make(map[string]any)
	if empty {
		return obj, nil
	}
	for {
		keyAt := p.i
		key, err := p.key()
		if err != nil {
			return nil, err
		}
		if _, dup := obj[key]; dup {
			return nil, duplicateKey(keyAt)
		}
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		obj[key] = v
		more, err := p.more('}', "after object key:value pair")
		if err != nil {
			return nil, err
		}
		if !more {
			return obj, nil
		}
	}
}

// key reads an object key and the colon after it, leaving p.i at the value.
func (p *jsonParser) key() (string, error) {
	if p.i >= len(p.s) {
		return "", errJSONEnd
	}
	if p.s[p.i] != '"' {
		return "", p.syntaxError("looking for beginning of object key string")
	}
	key, err := p.str()
	if err != nil {
		return "", err
	}
	p.skipSpace()
	if p.i >= len(p.s) {
		return "", errJSONEnd
	}
	if p.s[p.i] != ':' {
		return "", p.syntaxError("after object key")
	}
	p.i++
	p.skipSpace()
	return key, nil
}

// duplicateKey is the error for an object key seen twice in the same object.
// encoding/json lets the last one win, but a producer and outbound could then
// read different values from the same record; the key is not quoted (it is input).
func duplicateKey(offset int) error {
	return errors.New("duplicate object key at offset " + strconv.Itoa(offset))
}

func (p *jsonParser) array() (any, error) {
	empty, err := p.open(']')
	if err != nil {
		return nil, err
	}
	arr := []any{}
	if empty {
		return arr, nil
	}
	for {
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		arr = append(arr, v)
		more, err := p.more(']', "after array element")
		if err != nil {
			return nil, err
		}
		if !more {
			return arr, nil
		}
	}
}

// open enters the object or array whose opening byte is at p.i and reports
// whether it is empty, that is whether the closing byte comes next; then it is
// closed too.
func (p *jsonParser) open(closing byte) (bool, error) {
	if err := p.enter(); err != nil {
		return false, err
	}
	p.i++ // '{' or '['
	p.skipSpace()
	if p.i < len(p.s) && p.s[p.i] == closing {
		p.i++
		p.depth--
		return true, nil
	}
	return false, nil
}

// more reads what follows an element of an object or an array: a comma, after
// which another element follows (true), or the container's closing byte, which
// ends it (false). Anything else is a syntax error that names where.
func (p *jsonParser) more(closing byte, where string) (bool, error) {
	p.skipSpace()
	if p.i >= len(p.s) {
		return false, errJSONEnd
	}
	switch p.s[p.i] {
	case ',':
		p.i++
		p.skipSpace()
		return true, nil
	case closing:
		p.i++
		p.depth--
		return false, nil
	default:
		return false, p.syntaxError(where)
	}
}

// str reads a string starting at its opening quote. A string of plain printable
// ASCII and valid UTF-8 is a slice of the input; one with escapes or invalid UTF-8
// goes through encoding/json, which unescapes and replaces bad bytes with U+FFFD.
func (p *jsonParser) str() (string, error) {
	start := p.i
	p.i++ // opening quote
	plain := true
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			raw := p.s[start:p.i]
			if plain {
				return raw[1 : len(raw)-1], nil
			}
			var out string
			if err := json.Unmarshal([]byte(raw), &out); err != nil {
				p.i = start
				return "", errors.New("invalid string at offset " + strconv.Itoa(start) + ": " + err.Error())
			}
			return out, nil
		case c == '\\':
			plain = false
			p.i += 2 // the escaped character can be a quote; encoding/json checks the rest
		case c < 0x20:
			return "", p.syntaxError("in string literal")
		case c < utf8.RuneSelf:
			p.i++
		default:
			r, size := utf8.DecodeRuneInString(p.s[p.i:])
			if r == utf8.RuneError && size == 1 {
				plain = false
			}
			p.i += size
		}
	}
	return "", errJSONEnd
}

// number reads -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? and returns its literal.
func (p *jsonParser) number() (string, error) {
	start := p.i
	if p.s[p.i] == '-' {
		p.i++
	}
	switch {
	case p.i >= len(p.s):
		return "", errJSONEnd
	case p.s[p.i] == '0':
		p.i++
	case p.s[p.i] >= '1' && p.s[p.i] <= '9':
		p.digits()
	default:
		return "", p.syntaxError("in numeric literal")
	}
	if p.i < len(p.s) && p.s[p.i] == '.' {
		p.i++
		if !p.digits() {
			return "", p.endOrError("after decimal point in numeric literal")
		}
	}
	if p.i < len(p.s) && (p.s[p.i] == 'e' || p.s[p.i] == 'E') {
		p.i++
		if p.i < len(p.s) && (p.s[p.i] == '+' || p.s[p.i] == '-') {
			p.i++
		}
		if !p.digits() {
			return "", p.endOrError("in exponent of numeric literal")
		}
	}
	return p.s[start:p.i], nil
}

func (p *jsonParser) endOrError(context string) error {
	if p.i >= len(p.s) {
		return errJSONEnd
	}
	return p.syntaxError(context)
}

// digits skips [0-9]* and reports whether there was at least one.
func (p *jsonParser) digits() bool {
	start := p.i
	for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
		p.i++
	}
	return p.i > start
}
