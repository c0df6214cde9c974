package schemas

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"

	"github.com/outbound-webhooks/outbound/internal/clip"
	"github.com/outbound-webhooks/outbound/internal/ctrlchar"
)

// Schema names; the file of each is json/<name>.schema.json.
const (
	SchemaEvent          = "chat.message.v1"
	SchemaBundlePayload  = "webhook.bundle.v1"
	SchemaMessagePayload = "webhook.message.v1"
	SchemaControl        = "webhook.control.v1"
)

// ErrInvalidJSON marks input that is not one well-formed JSON value (syntax error,
// empty input, trailing data). Test with errors.Is.
var ErrInvalidJSON = errors.New("invalid JSON")

// ErrSchema marks well-formed JSON that violates its schema: a required field is
// missing, a value has the wrong type or is out of range, or a timestamp cannot be
// read. Test with errors.Is.
var ErrSchema = errors.New("schema violation")

// MaxErrorLen bounds the length in bytes of every error returned by the Decode and
// Validate functions: they are single-line and fit in a Kafka header.
const MaxErrorLen = 500

// maxListed is how many field errors an error message names before "(+N more)".
const maxListed = 3

//go:embed json/*.schema.json
var schemaFiles embed.FS

// Files returns the embedded JSON Schema files (draft 2020-12), one per schema name,
// at the root of the returned file system: "chat.message.v1.schema.json", ...
func Files() fs.FS {
	sub, err := fs.Sub(schemaFiles, "json")
	if err != nil {
		panic(err) // "json" is a valid path, fs.Sub cannot fail on it
	}
	return sub
}

// compiled holds the schemas, compiled once at package initialisation.
var compiled = mustCompile()

type compiledSchemas struct {
	event, bundle, message, control *jsonschema.Schema
}

// mustCompile compiles the embedded schemas. They are part of the binary, so a
// failure is a programming error caught by every test of this package.
func mustCompile() compiledSchemas {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	entries, err := fs.ReadDir(schemaFiles, "json")
	if err != nil {
		panic(fmt.Sprintf("schemas: reading embedded schemas: %v", err))
	}
	for _, e := range entries {
		raw, err := schemaFiles.ReadFile("json/" + e.Name())
		if err != nil {
			panic(fmt.Sprintf("schemas: reading %s: %v", e.Name(), err))
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			panic(fmt.Sprintf("schemas: decoding %s: %v", e.Name(), err))
		}
		if doc, err = inlineLocalRefs(doc); err != nil {
			panic(fmt.Sprintf("schemas: inlining %s: %v", e.Name(), err))
		}
		if err := c.AddResource(schemaURL(strings.TrimSuffix(e.Name(), ".schema.json")), doc); err != nil {
			panic(fmt.Sprintf("schemas: adding %s: %v", e.Name(), err))
		}
	}
	compile := func(name string) *jsonschema.Schema {
		s, err := c.Compile(schemaURL(name))
		if err != nil {
			panic(fmt.Sprintf("schemas: compiling %s: %v", name, err))
		}
		return s
	}
	return compiledSchemas{
		event:   compile(SchemaEvent),
		bundle:  compile(SchemaBundlePayload),
		message: compile(SchemaMessagePayload),
		control: compile(SchemaControl),
	}
}

// inlineLocalRefs returns the schema document with every {"$ref": "#/$defs/x"}
// replaced by a copy of definition x (keeping the annotations written next to the
// $ref). The validator walks one extra schema layer, with its allocations, for each
// $ref it follows; inlining them roughly halves the time to validate an event. Only
// annotation keywords may stand next to such a $ref, so the inlined schema accepts
// exactly what the file does; anything else is refused. (The files of this package
// put no "$ref" key inside const, enum or examples values, where it is data.)
func inlineLocalRefs(doc any) (any, error) {
	root, ok := doc.(map[string]any)
	if !ok {
		return nil, errors.New("schema is not an object")
	}
	defs, _ := root["$defs"].(map[string]any)
	var inline func(node any, depth int) (any, error)
	inline = func(node any, depth int) (any, error) {
		if depth > 32 {
			return nil, errors.New("$ref nesting deeper than 32: recursive definition?")
		}
		switch n := node.(type) {
		case []any:
			out := make([]any, len(n))
			for i, v := range n {
				var err error
				if out[i], err = inline(v, depth); err != nil {
					return nil, err
				}
			}
			return out, nil
		case map[string]any:
			ref, isRef := n["$ref"].(string)
			if isRef && strings.HasPrefix(ref, "#/$defs/") {
				def, ok := defs[strings.TrimPrefix(ref, "#/$defs/")].(map[string]any)
				if !ok {
					return nil, fmt.Errorf("%s: no such definition", ref)
				}
				expanded, err := inline(def, depth+1)
				if err != nil {
					return nil, err
				}
				merged := maps.Clone(expanded.(map[string]any))
				for k, v := range n {
					switch k {
					case "$ref":
					case "description", "title", "$comment", "examples":
						merged[k] = v
					default:
						return nil, fmt.Errorf("%s: keyword %q beside the $ref cannot be inlined", ref, k)
					}
				}
				return merged, nil
			}
			out := make(map[string]any, len(n))
			for k, v := range n {
				var err error
				if out[k], err = inline(v, depth); err != nil {
					return nil, err
				}
			}
			return out, nil
		default:
			return node, nil
		}
	}
	return inline(doc, 0)
}

// schemaURL is the $id of a schema file.
func schemaURL(name string) string {
	return "https://github.com/outbound-webhooks/outbound/schemas/json/" + name + ".schema.json"
}

// DecodeControl validates data against webhook.control.v1 and decodes it, with the
// same errors as DecodeEvent. Control messages are few, so they go through the
// validator: the schema's formats (uri, email) and if/then variants stay its job.
func DecodeControl(data []byte) (ControlMessage, error) {
	const what = "control message"
	msg, err := validateInto(compiled.control, what, data, controlFromDoc, "at")
	if err != nil {
		return ControlMessage{}, err
	}
	ids := []idField{{"workspace_id", msg.WorkspaceID}}
	if msg.ID != "" { // optional; the schema refuses an empty one
		ids = append(ids, idField{"id", msg.ID})
	}
	if err := checkIDs(what, ids...); err != nil {
		return ControlMessage{}, err
	}
	return msg, nil
}

// ValidateBundlePayload checks a webhook body against webhook.bundle.v1.
func ValidateBundlePayload(data []byte) error {
	_, err := validate(compiled.bundle, "bundle payload", data)
	return err
}

// ValidateMessagePayload checks a webhook body against webhook.message.v1.
func ValidateMessagePayload(data []byte) error {
	_, err := validate(compiled.message, "message payload", data)
	return err
}

// validate decodes data once into the generic form the validator needs (numbers
// kept exact as json.Number, see parseJSON) and validates it.
func validate(s *jsonschema.Schema, what string, data []byte) (any, error) {
	doc, err := parseJSON(data)
	if err != nil {
		return nil, newWireError(ErrInvalidJSON, err, "decoding "+what+": "+ErrInvalidJSON.Error()+": "+err.Error())
	}
	if err := validateDoc(s, doc); err != nil {
		var verr *jsonschema.ValidationError
		if !errors.As(err, &verr) {
			return nil, newWireError(ErrSchema, err, "validating "+what+": "+ErrSchema.Error()+": "+err.Error())
		}
		return nil, newWireError(ErrSchema, nil, "validating "+what+": "+ErrSchema.Error()+": "+describe(verr, doc))
	}
	return doc, nil
}

// validateInto validates data against s and converts the document with fromDoc;
// an instant that fromDoc refuses is a schema violation of the field at
// timePath.
func validateInto[T any](s *jsonschema.Schema, what string, data []byte, fromDoc func(any) (T, error), timePath string) (T, error) {
	var zero T
	doc, err := validate(s, what, data)
	if err != nil {
		return zero, err
	}
	v, err := fromDoc(doc)
	if err != nil {
		return zero, badInstant(what, timePath, err)
	}
	return v, nil
}

// errValidatorPanicked is the cause of the error validate returns when the
// validator panics: jsonschema v6.0.3 (the latest) dereferences the nil
// *big.Rat that big.Rat.SetString returns for a number with an exponent beyond a
// million (1e10000000) when the schema bounds that number (minimum,
// exclusiveMinimum...), like an "at" of a control message.
var errValidatorPanicked = errors.New("a number is beyond what the validator can compare")

// validateDoc is s.Validate, with its panic turned into an error.
func validateDoc(s *jsonschema.Schema, doc any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errValidatorPanicked
		}
	}()
	return s.Validate(doc)
}

// badInstant reports a timestamp that passed the schema (its pattern lets month
// 13 and February 30 through, and its bound any positive number) but that
// ParseTimestamp refuses.
func badInstant(what, field string, err error) error {
	return newWireError(ErrSchema, err, "validating "+what+": "+ErrSchema.Error()+": "+field+": "+err.Error())
}

// wireError is the error of every Decode and Validate function: a short one-line
// message, and the kind (ErrInvalidJSON or ErrSchema) plus the cause for errors.Is/As.
type wireError struct {
	msg   string
	kind  error
	cause error
}

func newWireError(kind, cause error, msg string) error {
	return &wireError{msg: clip.String(ctrlchar.ToSpace(msg), MaxErrorLen), kind: kind, cause: cause}
}

func (e *wireError) Error() string { return e.msg }

func (e *wireError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.cause}
}

// fieldError is one leaf of a validation error: a field path and what is wrong.
type fieldError struct{ path, msg string }

// describe renders a validation error as "path: problem; path: problem (+N more)",
// sorted by path so that the same input always gives the same message. Values from
// the input are never quoted: they may be long, or secret (webhook URLs, secrets).
func describe(verr *jsonschema.ValidationError, doc any) string {
	var leaves []fieldError
	collectLeaves(verr, doc, &leaves)
	return renderFieldErrors(leaves)
}

// renderFieldErrors renders field errors as "path: problem; path: problem (+N
// more)", sorted so that the same input always gives the same message.
func renderFieldErrors(leaves []fieldError) string {
	slices.SortFunc(leaves, func(a, b fieldError) int {
		if c := strings.Compare(a.path, b.path); c != 0 {
			return c
		}
		return strings.Compare(a.msg, b.msg)
	})
	leaves = slices.Compact(leaves)
	if len(leaves) == 0 {
		return "(root): invalid"
	}
	var b strings.Builder
	for i, l := range leaves {
		if i == maxListed {
			fmt.Fprintf(&b, " (+%d more)", len(leaves)-maxListed)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(l.path)
		b.WriteString(": ")
		b.WriteString(l.msg)
	}
	return b.String()
}

func collectLeaves(e *jsonschema.ValidationError, doc any, out *[]fieldError) {
	if len(e.Causes) > 0 {
		for _, c := range e.Causes {
			collectLeaves(c, doc, out)
		}
		return
	}
	path := fieldPath(doc, e.InstanceLocation)
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		for _, name := range k.Missing {
			*out = append(*out, fieldError{childPath(path, name), missingMessage})
		}
	case *kind.AdditionalProperties:
		for _, name := range k.Properties {
			*out = append(*out, fieldError{childPath(path, name), "field not allowed"})
		}
	default:
		*out = append(*out, fieldError{path, kindMessage(e.ErrorKind)})
	}
}

// rootPath names the whole document in a field path.
const rootPath = "(root)"

// fieldPath renders an instance location as "message.sender.full_name" or
// "messages[1].timestamp", looking at the document to tell array indexes from keys.
func fieldPath(doc any, loc []string) string {
	if len(loc) == 0 {
		return rootPath
	}
	var b strings.Builder
	cur := doc
	for _, tok := range loc {
		if arr, ok := cur.([]any); ok {
			b.WriteByte('[')
			b.WriteString(tok)
			b.WriteByte(']')
			if i, err := strconv.Atoi(tok); err == nil && i >= 0 && i < len(arr) {
				cur = arr[i]
			} else {
				cur = nil
			}
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
		if obj, ok := cur.(map[string]any); ok {
			cur = obj[tok]
		} else {
			cur = nil
		}
	}
	return b.String()
}

func childPath(parent, name string) string {
	if parent == rootPath {
		return name
	}
	return parent + "." + name
}

// patternMessages replaces "does not match pattern ..." for the patterns whose
// meaning is better said in words.
var patternMessages = map[string]string{
	eventTimestampPattern: `not an accepted timestamp (RFC 3339, "2006-01-02T15:04:05+0000", "2006-01-02 15:04:05 +0000", or epoch seconds/milliseconds as a number)`,
	`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\+0000$`: `must be a UTC timestamp like "2021-02-24T16:25:29+0000"`,
	`^https?://`:                             "must be an http:// or https:// URL",
	"^[^\u0000-\u001f\u007f-\u009f\ufffd]*$": idCharsMessage,
	`^whsec_([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{4}|[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)$`: "must be standard base64 (with padding) after the whsec_ prefix",
}

// kindMessage says what is wrong without quoting the offending value.
func kindMessage(k jsonschema.ErrorKind) string {
	switch k := k.(type) {
	case *kind.Type:
		return typeMessage(k.Got, strings.Join(k.Want, " or "))
	case *kind.Enum:
		return "value must be " + oneOf(k.Want)
	case *kind.Const:
		return "value must be " + oneOf([]any{k.Want})
	case *kind.Pattern:
		if msg, ok := patternMessages[k.Want]; ok {
			return msg
		}
		return "does not match pattern " + k.Want
	case *kind.Format:
		return "not a valid " + k.Want
	case *kind.MinLength:
		if k.Want == 1 {
			return emptyMessage
		}
		return fmt.Sprintf("too short: %d characters, want at least %d", k.Got, k.Want)
	case *kind.MaxLength:
		return tooLongMessage(k.Got, k.Want)
	case *kind.MinItems:
		if k.Want == 1 {
			return emptyMessage
		}
		return fmt.Sprintf("too few items: %d, want at least %d", k.Got, k.Want)
	case *kind.Minimum:
		return "must be >= " + k.Want.RatString()
	case *kind.ExclusiveMinimum:
		return "must be > " + k.Want.RatString()
	case *kind.Maximum:
		return "must be <= " + k.Want.RatString()
	default:
		return "violates " + strings.Join(k.KeywordPath(), "/")
	}
}

func typeMessage(got, want string) string { return "wrong type: got " + got + ", want " + want }

func tooLongMessage(got, want int) string {
	return fmt.Sprintf("too long: %d characters, want at most %d", got, want)
}

func oneOf(values []any) string {
	quoted := make([]string, len(values))
	for i, v := range values {
		if s, ok := v.(string); ok {
			quoted[i] = strconv.Quote(s)
		} else {
			quoted[i] = fmt.Sprint(v)
		}
	}
	if len(quoted) == 1 {
		return quoted[0]
	}
	return "one of " + strings.Join(quoted, ", ")
}
