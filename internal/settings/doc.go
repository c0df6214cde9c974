// Package settings checks what a person types as a webhook's settings (URL,
// granularity, owner email, signing secret) and says what is wrong in words,
// before anything is published. `outbound ctl configure` and the console's
// form both use it, so both refuse the same input with the same reasons; the
// control topic's own check (control.Validate) still runs on every message.
//
// With the SSRF guard on, a URL whose host is, or resolves to, an address the
// sink would refuse to dial is refused here too, so that an owner learns it on
// the form rather than from eleven failed deliveries. The sink's guard stays
// the authority: a name may resolve differently at delivery time.
package settings
