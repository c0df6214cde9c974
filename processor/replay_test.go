package processor

import (
	"testing"

	"github.com/segmentio/kafka-go"
)

func TestCommitMetadataRoundTrips(t *testing.T) {
	m := commitMeta{Watermark: 123, Oldest: 45}
	if s := m.String(); s != "v1 wm=123 oldest=45" {
		t.Fatalf("metadata %q", s)
	}
	if got, ok := parseCommitMeta(m.String()); !ok || got != m {
		t.Fatalf("parsed %+v %v", got, ok)
	}
	for _, bad := range []string{"", "v2 wm=1 oldest=1", "v1 wm=1", "v1 wm=1 oldest=1 more", "v1 wm=1 oldest=5", "v1 wm=-1 oldest=0"} {
		if _, ok := parseCommitMeta(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestResumeAtReplaysWhatRedisLost(t *testing.T) {
	meta := commitMeta{Watermark: 99, Oldest: 40}.String()
	for _, c := range []struct {
		name        string
		committed   int64
		meta        string
		wm, applied int64
		start, to   int64
		replay      bool
	}{
		{name: "nothing yet", committed: -1, wm: -1, applied: -1, start: kafka.FirstOffset},
		{name: "commit of an older version", committed: 50, wm: -1, applied: -1, start: 50},
		{name: "Redis ahead of the commit", committed: 100, meta: meta, wm: 120, applied: -1, start: 121},
		{name: "Redis at the commit", committed: 100, meta: meta, wm: 99, applied: -1, start: 100},
		{name: "watermark behind the commit", committed: 100, meta: meta, wm: 70, applied: -1, start: 71, to: 99, replay: true},
		{name: "watermark behind what this worker applied", committed: 100, meta: meta, wm: 105, applied: 130, start: 106, to: 130, replay: true},
		{name: "watermark missing", committed: 100, meta: meta, wm: -1, applied: -1, start: 40, to: 99, replay: true},
		{name: "watermark missing while running", committed: 100, meta: meta, wm: -1, applied: 130, start: 40, to: 130, replay: true},
		{name: "watermark missing, no metadata", committed: 100, wm: -1, applied: 130, start: kafka.FirstOffset, to: 130, replay: true},
	} {
		r := resumeAt(c.committed, c.meta, c.wm, c.applied)
		if r.start != c.start || (r.why != "") != c.replay || (c.replay && r.to != c.to) {
			t.Errorf("%s: got %+v, want start %d, replay %v to %d", c.name, r, c.start, c.replay, c.to)
		}
	}
}
