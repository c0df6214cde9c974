// Package urls owns how the module checks and shows URLs that customers and
// operators configure: webhook receivers, permalinks, the SMTP server.
//
//   - CheckHTTP accepts an absolute http or https URL with a host and no control
//     characters. Its errors never quote the URL, which may carry a password or
//     a token.
//   - Redact is the one form in which such a URL leaves the system (logs, the
//     admin API, emails): the user-info password and every query-string value
//     are replaced by Marker; the keys, scheme, host and path stay readable.
//
// It imports nothing of the module but internal/ctrlchar.
package urls
