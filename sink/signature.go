package sink

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names of the Standard Webhooks signature scheme
// (https://www.standardwebhooks.com). Receivers verify with any of its libraries.
const (
	HeaderWebhookID        = "webhook-id"
	HeaderWebhookTimestamp = "webhook-timestamp"
	HeaderWebhookSignature = "webhook-signature"
)

// secretPrefix marks a secret whose rest is the base64 encoding of the HMAC key,
// as Standard Webhooks (and Svix) hand them out.
const secretPrefix = "whsec_"

// Sign returns the Standard Webhooks signature of one delivery:
// "v1," + base64(HMAC-SHA256(key, id + "." + unix seconds + "." + body)).
//
// The key is the base64-decoded rest of a "whsec_" secret, and the raw bytes of any
// other secret. A "whsec_" secret whose rest is not valid base64 is used as raw
// bytes, whole, because Sign has no error to return; such a signature will not
// verify at a receiver that decodes the secret, so configuration should refuse the
// secret first with ValidateSecret.
//
// id must be the same on every retry of a delivery (the bundle id), so a receiver
// can de-duplicate, and ts the time of this attempt: receivers reject timestamps
// older than a few minutes to stop replays.
func Sign(secret string, id string, ts time.Time, body []byte) string {
	mac := hmac.New(sha256.New, signingKey(secret))
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write(strconv.AppendInt(nil, ts.Unix(), 10))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// ValidateSecret refuses a "whsec_" secret whose rest is not valid base64, the one
// secret Sign would silently use differently from every receiver library.
func ValidateSecret(secret string) error {
	rest, ok := strings.CutPrefix(secret, secretPrefix)
	if !ok {
		return nil
	}
	if _, err := base64.StdEncoding.DecodeString(rest); err != nil {
		return fmt.Errorf("decoding webhook secret after %q: %w", secretPrefix, err)
	}
	return nil
}

func signingKey(secret string) []byte {
	if rest, ok := strings.CutPrefix(secret, secretPrefix); ok {
		if key, err := base64.StdEncoding.DecodeString(rest); err == nil {
			return key
		}
	}
	return []byte(secret)
}

// SetWebhookHeaders sets the Standard Webhooks headers of a delivery on h:
// webhook-id and webhook-timestamp always, webhook-signature when the webhook
// has a secret. body must be the exact bytes sent: receivers verify the raw
// body, so it must not be re-encoded after signing.
func SetWebhookHeaders(h http.Header, secret, id string, ts time.Time, body []byte) {
	h.Set(HeaderWebhookID, id)
	h.Set(HeaderWebhookTimestamp, strconv.FormatInt(ts.Unix(), 10))
	if secret != "" {
		h.Set(HeaderWebhookSignature, Sign(secret, id, ts, body))
	}
}
