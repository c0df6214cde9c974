package webhooklog

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/outbound-webhooks/outbound/internal/urls"
)

// RequestLog is the downloadable request log, as the admin API, `outbound ctl
// requests` and the console hand it out: the 100 most recent attempts, newest
// first. Field names are part of those interfaces: add fields, never rename.
type RequestLog struct {
	Workspace string    `json:"workspace_id"`
	Requests  []Request `json:"requests"`
}

// NewRequestLog assembles the download of ws's requests. The log keeps the URL
// as it was requested, which may carry the receiver's basic-auth password: it
// is redacted here, where the log leaves the system.
func NewRequestLog(ws string, reqs []Request) RequestLog {
	for i := range reqs {
		reqs[i].URL = urls.Redact(reqs[i].URL)
	}
	if reqs == nil {
		reqs = []Request{}
	}
	return RequestLog{Workspace: ws, Requests: reqs}
}

// DownloadFilename is the download's file name. Characters outside a safe set
// become "_": a workspace id must not break out of the quoted header value.
func DownloadFilename(ws string) string {
	safe := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, ws)
	return "webhook-requests-" + safe + ".json"
}

// WriteJSON writes v as indented JSON, the format of every document the admin
// API, ctl and the console hand out.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	// Nothing here is rendered as HTML, and payloads carry HTML (the
	// aggregation): keep it readable instead of escaping < and >.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("encoding JSON: %w", err)
	}
	return nil
}
