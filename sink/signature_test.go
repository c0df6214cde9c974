package sink

import (
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// The test vector every Standard Webhooks reference library checks its Sign
// against (libraries/go/webhook_test.go TestWebhookSign, and the same values in
// the python, javascript, php, ruby, csharp and java tests of
// github.com/standard-webhooks/standard-webhooks).
const (
	vectorSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorMsgID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTimestamp = 1614265330
	vectorPayload   = `{"test": 2432232314}`
	vectorSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignVectors(t *testing.T) {
	tests := []struct {
		name    string
		secret  string
		id      string
		ts      time.Time
		payload string
		want    string
	}{
		{
			name:    "standard webhooks reference vector",
			secret:  vectorSecret,
			id:      vectorMsgID,
			ts:      time.Unix(vectorTimestamp, 0),
			payload: vectorPayload,
			want:    vectorSignature,
		},
		{
			// Only whole seconds are signed: the header carries unix seconds.
			name:    "sub-second part of the timestamp is ignored",
			secret:  vectorSecret,
			id:      vectorMsgID,
			ts:      time.Unix(vectorTimestamp, 999_999_999),
			payload: vectorPayload,
			want:    vectorSignature,
		},
		{
			name:    "time zone of the timestamp is irrelevant",
			secret:  vectorSecret,
			id:      vectorMsgID,
			ts:      time.Unix(vectorTimestamp, 0).In(time.FixedZone("IST", 2*3600)),
			payload: vectorPayload,
			want:    vectorSignature,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Sign(tt.secret, tt.id, tt.ts, []byte(tt.payload)); got != tt.want {
				t.Errorf("Sign() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSignChangesWithEveryInput(t *testing.T) {
	base := Sign(vectorSecret, vectorMsgID, time.Unix(vectorTimestamp, 0), []byte(vectorPayload))
	tests := []struct {
		name    string
		secret  string
		id      string
		ts      int64
		payload string
	}{
		{"other secret", "whsec_" + base64.StdEncoding.EncodeToString([]byte("another key")), vectorMsgID, vectorTimestamp, vectorPayload},
		{"raw secret with the same text", strings.TrimPrefix(vectorSecret, "whsec_"), vectorMsgID, vectorTimestamp, vectorPayload},
		{"other id", vectorSecret, "msg_other", vectorTimestamp, vectorPayload},
		{"other second", vectorSecret, vectorMsgID, vectorTimestamp + 1, vectorPayload},
		{"other body", vectorSecret, vectorMsgID, vectorTimestamp, `{"test": 2432232315}`},
		// Without the "." separators, id "a1" + ts "23" and id "a" + ts "123" would
		// sign the same bytes.
		{"boundary moved between id and timestamp", vectorSecret, vectorMsgID + "1", vectorTimestamp % 1_000_000_000, vectorPayload},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Sign(tt.secret, tt.id, time.Unix(tt.ts, 0), []byte(tt.payload)); got == base {
				t.Errorf("Sign() = %q, same as the reference signature", got)
			}
		})
	}
}

// TestSignVerifiedByReferenceLibrary checks Sign against an implementation we did
// not write: the Go library of the Standard Webhooks project, as a receiver would
// use it, over a real HTTP request.
func TestSignVerifiedByReferenceLibrary(t *testing.T) {
	rawKey := []byte("a raw secret, not base64 \x00\xff")
	tests := []struct {
		name     string
		secret   string // what Sign gets
		verifier func() (*standardwebhooks.Webhook, error)
		body     string
	}{
		{
			name:     "whsec secret",
			secret:   vectorSecret,
			verifier: func() (*standardwebhooks.Webhook, error) { return standardwebhooks.NewWebhook(vectorSecret) },
			body:     vectorPayload,
		},
		{
			name:   "whsec secret of 32 random-looking bytes",
			secret: "whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef")),
			verifier: func() (*standardwebhooks.Webhook, error) {
				return standardwebhooks.NewWebhook("whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef")))
			},
			body: `{"chat":{"full_name":"Dana <b>"},"aggregation":"a<br/>b 👍🏽 שלום"}`,
		},
		{
			name:     "raw secret",
			secret:   string(rawKey),
			verifier: func() (*standardwebhooks.Webhook, error) { return standardwebhooks.NewWebhookRaw(rawKey) },
			body:     `{"message":{"text":"hi"}}`,
		},
		{
			name:     "empty body",
			secret:   vectorSecret,
			verifier: func() (*standardwebhooks.Webhook, error) { return standardwebhooks.NewWebhook(vectorSecret) },
			body:     "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wh, err := tt.verifier()
			if err != nil {
				t.Fatalf("creating verifier: %v", err)
			}
			verified := make(chan error, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, err := io.ReadAll(r.Body)
				if err != nil {
					verified <- err
					return
				}
				verified <- wh.Verify(body, r.Header)
			}))
			defer srv.Close()

			client, err := NewHTTPClient(ClientConfig{AllowPrivate: true})
			if err != nil {
				t.Fatal(err)
			}
			req, err := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			// Verify also checks the timestamp is within 5 minutes of now.
			SetWebhookHeaders(req.Header, tt.secret, "bundle_01HZX", time.Now(), []byte(tt.body))
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if err := <-verified; err != nil {
				t.Errorf("reference library rejected the signature: %v", err)
			}
		})
	}
}

func TestReferenceLibraryRejectsTampering(t *testing.T) {
	wh, err := standardwebhooks.NewWebhook(vectorSecret)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	body := []byte(`{"text":"pay 10"}`)
	tests := []struct {
		name   string
		mutate func(h http.Header, body []byte) []byte
	}{
		{"body changed", func(h http.Header, body []byte) []byte { return []byte(`{"text":"pay 99"}`) }},
		{"id changed", func(h http.Header, body []byte) []byte { h.Set(HeaderWebhookID, "other"); return body }},
		{"timestamp changed", func(h http.Header, body []byte) []byte {
			h.Set(HeaderWebhookTimestamp, "1")
			return body
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			SetWebhookHeaders(h, vectorSecret, "bundle_1", now, body)
			got := tt.mutate(h, body)
			if err := wh.VerifyIgnoringTimestamp(got, h); !errors.Is(err, standardwebhooks.ErrNoMatchingSignature) {
				t.Errorf("VerifyIgnoringTimestamp() = %v, want ErrNoMatchingSignature", err)
			}
		})
	}
}

func TestValidateSecret(t *testing.T) {
	tests := []struct {
		name    string
		secret  string
		wantErr bool
	}{
		{"whsec with base64", vectorSecret, false},
		{"raw secret", "just-a-shared-secret", false},
		{"empty", "", false},
		{"whsec with invalid base64", "whsec_not base64!", true},
		{"whsec with bad padding", "whsec_abc", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateSecret(tt.secret)
			if (err != nil) != tt.wantErr {
				t.Errorf("ValidateSecret(%q) = %v, wantErr %v", tt.secret, err, tt.wantErr)
			}
		})
	}
}

func TestSignInvalidWhsecUsesRawBytes(t *testing.T) {
	secret := "whsec_not base64!"
	ts := time.Unix(vectorTimestamp, 0)
	wh, err := standardwebhooks.NewWebhookRaw([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	SetWebhookHeaders(h, secret, vectorMsgID, ts, []byte(vectorPayload))
	if err := wh.VerifyIgnoringTimestamp([]byte(vectorPayload), h); err != nil {
		t.Errorf("signature is not keyed with the raw secret bytes: %v", err)
	}
}
