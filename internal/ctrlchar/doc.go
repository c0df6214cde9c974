// Package ctrlchar owns the one rule for control characters in identifiers and
// text that come from outside: a rune is a control character when
// unicode.IsControl says so (C0, DEL and C1).
//
// Every check in the module uses it: the schema validator's one-line error
// messages, schemas.CheckID (the one rule for ids: control characters delimit
// Redis keys), the owner email's headers, and the URL check in internal/urls. It
// imports nothing of the module.
package ctrlchar
