// Package layout holds the module's import rules as tests: which package may
// import which, so that data flows one way (processor -> windowing -> sink, fed by
// the webhook leaf that control fills), and what the worker binary may link. It
// has no code of its own.
package layout
