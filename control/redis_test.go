package control

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/outbound-webhooks/outbound/internal/testenv"
	"github.com/outbound-webhooks/outbound/webhook"
)

// Many workers write the same records; the offset guard keeps the newest state
// whatever order their writes land in.
func TestMaterialiseOffsetGuard(t *testing.T) {
	hook := func(url string, epoch int64) webhook.Webhook {
		return webhook.Webhook{Workspace: "ws_1", URL: url, Granularity: webhook.H6, Enabled: true,
			OwnerEmail: "o@example.com", Secret: "whsec_c2VjcmV0", Epoch: epoch, EnabledSince: epoch,
			UpdatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	}
	type write struct {
		partition int
		offset    int64
		ws        string
		w         webhook.Webhook
		ok        bool
	}
	tests := []struct {
		name        string
		writes      []write
		wantHook    *webhook.Webhook
		wantOffsets map[int]int64
	}{
		{
			name:        "a set, then a lagging worker's older set is ignored",
			writes:      []write{{0, 5, "ws_1", hook("https://new.example", 6), true}, {0, 3, "ws_1", hook("https://old.example", 4), true}},
			wantHook:    ptr(hook("https://new.example", 6)),
			wantOffsets: map[int]int64{0: 5},
		},
		{
			name:        "the same record written twice",
			writes:      []write{{0, 5, "ws_1", hook("https://a.example", 6), true}, {0, 5, "ws_1", hook("https://b.example", 6), true}},
			wantHook:    ptr(hook("https://a.example", 6)),
			wantOffsets: map[int]int64{0: 5},
		},
		{
			name:        "a delete, then a replayed set is ignored",
			writes:      []write{{1, 0, "ws_1", hook("https://a.example", 1), true}, {1, 1, "ws_1", webhook.Webhook{}, false}, {1, 0, "ws_1", hook("https://a.example", 1), true}},
			wantOffsets: map[int]int64{1: 1},
		},
		{
			name:        "a rejected record moves only the offset",
			writes:      []write{{2, 0, "ws_1", hook("https://a.example", 1), true}, {2, 1, "", webhook.Webhook{}, false}},
			wantHook:    ptr(hook("https://a.example", 1)),
			wantOffsets: map[int]int64{2: 1},
		},
		{
			name:        "offsets are per partition",
			writes:      []write{{0, 9, "", webhook.Webhook{}, false}, {1, 2, "ws_1", hook("https://a.example", 1), true}},
			wantHook:    ptr(hook("https://a.example", 1)),
			wantOffsets: map[int]int64{0: 9, 1: 2},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rdb, keys := testenv.Redis(t), Keys(testenv.KeyPrefix())
			ctx := context.Background()
			applied := map[int]int64{}
			for _, w := range tc.writes {
				first, err := materialise(ctx, rdb, keys, w.partition, w.offset, w.ws, w.w, w.ok)
				if err != nil {
					t.Fatal(err)
				}
				prev, seen := applied[w.partition]
				if want := !seen || w.offset > prev; first != want {
					t.Errorf("materialise(%d/%d) first = %v, want %v", w.partition, w.offset, first, want)
				}
				if first {
					applied[w.partition] = w.offset
				}
			}
			got, ok, err := LoadWebhook(ctx, rdb, keys, "ws_1")
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.wantHook == nil && ok:
				t.Errorf("LoadWebhook = %+v, want none", got)
			case tc.wantHook != nil && (!ok || !sameWebhook(got, *tc.wantHook)):
				t.Errorf("LoadWebhook = %+v, %v\nwant %+v", got, ok, *tc.wantHook)
			}
			st, err := LoadState(ctx, rdb, keys)
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(st.Offsets, tc.wantOffsets) {
				t.Errorf("offsets = %v, want %v", st.Offsets, tc.wantOffsets)
			}
			for p, want := range tc.wantOffsets {
				if off, ok, err := materialisedOffset(ctx, rdb, keys, p); err != nil || !ok || off != want {
					t.Errorf("materialisedOffset(%d) = %d, %v, %v; want %d", p, off, ok, err, want)
				}
			}
		})
	}
}
