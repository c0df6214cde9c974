// Package cli holds what the outbound commands (outbound, outbound-demo,
// outbound-bench) share about their command lines: flags that fall back to
// OUTBOUND_* environment variables, usage errors, and how a command's error
// becomes its exit status. It knows nothing about what the commands do.
package cli
