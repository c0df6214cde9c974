package schemas

import (
	"encoding/json"
	"io/fs"
	"slices"
	"strings"
	"testing"
)

func TestSchemaFiles(t *testing.T) {
	names := []string{SchemaEvent, SchemaBundlePayload, SchemaMessagePayload, SchemaControl}
	entries, err := fs.ReadDir(Files(), ".")
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range entries {
		files = append(files, e.Name())
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			if !slices.Contains(files, name+".schema.json") {
				t.Fatalf("Files() has no %s.schema.json: %v", name, files)
			}
			data, err := fs.ReadFile(Files(), name+".schema.json")
			if err != nil {
				t.Fatal(err)
			}
			var head struct {
				Schema string `json:"$schema"`
				ID     string `json:"$id"`
				Title  string `json:"title"`
			}
			if err := json.Unmarshal(data, &head); err != nil {
				t.Fatal(err)
			}
			if head.Schema != "https://json-schema.org/draft/2020-12/schema" {
				t.Errorf("$schema = %q, want draft 2020-12", head.Schema)
			}
			if head.ID != schemaURL(name) {
				t.Errorf("$id = %q, want %q", head.ID, schemaURL(name))
			}
			if head.Title != name {
				t.Errorf("title = %q, want %q", head.Title, name)
			}
		})
	}
	if len(files) != len(names) {
		t.Errorf("Files() holds %v, want one file per schema name %v", files, names)
	}
}

// TestEveryPatternHasAMessage keeps patternMessages in step with the files: a
// pattern without a message would surface to users as a raw regular expression.
func TestEveryPatternHasAMessage(t *testing.T) {
	var walk func(node any, inIf bool)
	walk = func(node any, inIf bool) {
		switch n := node.(type) {
		case map[string]any:
			if p, ok := n["pattern"].(string); ok && !inIf {
				if _, ok := patternMessages[p]; !ok {
					t.Errorf("pattern %q has no entry in patternMessages", p)
				}
			}
			for k, v := range n {
				walk(v, inIf || k == "if") // a failing "if" is not an error
			}
		case []any:
			for _, v := range n {
				walk(v, inIf)
			}
		}
	}
	entries, _ := fs.ReadDir(Files(), ".")
	for _, e := range entries {
		data, err := fs.ReadFile(Files(), e.Name())
		if err != nil {
			t.Fatal(err)
		}
		walk(normalise(t, data), false)
	}
}

func TestInlineLocalRefs(t *testing.T) {
	tests := []struct {
		name    string
		schema  string
		want    string // JSON of the result; empty when an error is wanted
		wantErr string
	}{
		{
			name:   "ref with description is replaced by the definition",
			schema: `{"properties":{"a":{"$ref":"#/$defs/s","description":"A"}},"$defs":{"s":{"type":"string","description":"S"}}}`,
			want:   `{"properties":{"a":{"type":"string","description":"A"}},"$defs":{"s":{"type":"string","description":"S"}}}`,
		},
		{
			name:   "nested refs",
			schema: `{"items":{"$ref":"#/$defs/o"},"$defs":{"o":{"properties":{"x":{"$ref":"#/$defs/s"}}},"s":{"type":"string"}}}`,
			want:   `{"items":{"properties":{"x":{"type":"string"}}},"$defs":{"o":{"properties":{"x":{"type":"string"}}},"s":{"type":"string"}}}`,
		},
		{
			name:    "assertion beside a ref is refused",
			schema:  `{"properties":{"a":{"$ref":"#/$defs/s","minLength":1}},"$defs":{"s":{"type":"string"}}}`,
			wantErr: `keyword "minLength" beside the $ref`,
		},
		{
			name:    "unknown definition",
			schema:  `{"items":{"$ref":"#/$defs/nope"}}`,
			wantErr: "no such definition",
		},
		{
			name:    "recursive definition",
			schema:  `{"items":{"$ref":"#/$defs/r"},"$defs":{"r":{"items":{"$ref":"#/$defs/r"}}}}`,
			wantErr: "recursive",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := inlineLocalRefs(normalise(t, []byte(tt.schema)))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("inlineLocalRefs error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			out, _ := json.Marshal(got)
			if !jsonEqual(t, out, []byte(tt.want)) {
				t.Errorf("inlineLocalRefs = %s, want %s", out, tt.want)
			}
		})
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	ja, _ := json.Marshal(normalise(t, a))
	jb, _ := json.Marshal(normalise(t, b))
	return string(ja) == string(jb)
}
