package windowing

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/jonboulle/clockwork"
	"github.com/redis/go-redis/v9"

	"github.com/outbound-webhooks/outbound/schemas"
	"github.com/outbound-webhooks/outbound/webhook"
)

var (
	//go:embed lua/append.lua
	appendLua string
	//go:embed lua/seal.lua
	sealLua string
	//go:embed lua/claim.lua
	claimLua string
	//go:embed lua/ack.lua
	ackLua string
	//go:embed lua/retry.lua
	retryLua string
	//go:embed lua/drop.lua
	dropLua string
	// waitingLua is prepended to the scripts that change what waits.
	//go:embed lua/waiting.prelude.lua
	waitingLua string

	appendScript = redis.NewScript(waitingLua + appendLua)
	sealScript   = redis.NewScript(waitingLua + sealLua)
	claimScript  = redis.NewScript(claimLua)
	ackScript    = redis.NewScript(waitingLua + ackLua)
	retryScript  = redis.NewScript(retryLua)
	dropScript   = redis.NewScript(waitingLua + dropLua)
)

// sep joins the parts of chat refs and window members.
const sep = "\x1f"

// Reserved hash fields of a window or bundle (see the Lua scripts). Every id the
// store gets passed schemas.CheckID when its event was decoded, and that rule
// refuses control characters: no workspace or chat id holds sep, so a chat ref or
// member splits back into its parts, and no message id starts with NUL, so the
// message fields of windows written before packing (one per message id) can
// never be mistaken for these. The store relies on that rather than checking
// again.
const (
	fieldDetails  = "\x00d"
	fieldNewChat  = "\x00n"
	fieldAttempt  = "\x00a"
	fieldPart     = "\x00p" // "part sent": see Bundle.Part
	fieldMessages = "\x00l" // its messages are in a list of their own (keys.messages)
	// Windows written before lists packed their messages into chunks: the
	// open one, and how many full ones "\x00c1", "\x00c2" ... there are.
	fieldOpenChunk  = "\x00o"
	fieldFullChunks = "\x00k"
	fullChunkPrefix = "\x00c"
)

// Config configures a Store. Durations are nominal: TimeScale divides them, and
// every granularity, before use.
type Config struct {
	Redis redis.UniversalClient
	// Prefix starts every key (default "outbound").
	Prefix string
	// TimeScale divides granularities and the durations below (default 1). At
	// 3600 an "1h" window lasts one second: for demos and end-to-end tests only.
	TimeScale float64
	// Grace delays a window's flush past its close so that messages produced just
	// before the close, but appended later, still make it (default 1m).
	Grace time.Duration
	// MaxSpread caps the stagger added to a window's flush time (hash of the chat
	// modulo min(granularity/12, MaxSpread)), so a 24h boundary with many chats
	// does not hit receivers in one second (default 5m).
	MaxSpread time.Duration
	// FutureSkew is how far ahead of now a message timestamp may be before it is
	// clamped to now (default 5m).
	FutureSkew time.Duration
	// SeenPerChat is how many message ids a chat remembers in granularity none to
	// drop upstream duplicates (default 1000). Windowed granularities de-duplicate
	// on the window itself.
	SeenPerChat int
	// SeenFor is how long a chat remembers those ids after its latest message
	// of granularity none (default 24h, the longest window: windowed
	// granularities drop a duplicate within its window). Without it the ids
	// of every chat that was ever on none would stay in Redis for good.
	SeenFor time.Duration
	// Clock decides which windows are due and when a claim's lease ends (default
	// the real clock); tests move a fake one instead of sleeping.
	Clock clockwork.Clock
}

// Store keeps windows, bundles and the per-partition offset watermark in Redis.
// Every key of a chat carries the hash tag of its input partition, so each
// script touches one slot and the model runs unchanged on Redis Cluster.
type Store struct {
	cfg Config
	// states remembers the chat state each append left, so that the next
	// batch of a chat needs no read of its own before the script: the script
	// checks the state it is given and refuses a stale one (append.lua), so a
	// stale entry costs a second attempt, never a wrong window. Reading the
	// state of every chat of every batch cost a round trip per batch: full-scale
	// windowed ingest ran at a median 0.80-0.83 of the plain consumer with it,
	// 0.87-1.00 without (docs/performance.md).
	states *lru.Cache[stateKey, chatState]
}

// chatStates bounds Store.states (a few hundred bytes a chat, a few MB in
// all): a chat beyond it costs its batches a read again.
const chatStates = 16 << 10

// stateKey names a chat's state: a chat's keys hold its partition, which a
// change of the topic's partition count changes.
type stateKey struct {
	partition int
	ref       string
}

// chatState is a chat's hash as append.lua reads it, a field not set empty:
// the sealed mark, and the open window's start, end, granularity and epoch.
type chatState struct{ sealed, os, oe, og, oep string }

// NewStore validates cfg and fills defaults.
func NewStore(cfg Config) (*Store, error) {
	if cfg.Redis == nil {
		return nil, errors.New("windowing: Config.Redis is required")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "outbound"
	}
	if cfg.TimeScale == 0 {
		cfg.TimeScale = 1
	}
	if cfg.TimeScale < 1 {
		return nil, fmt.Errorf("windowing: TimeScale must be >= 1, got %v", cfg.TimeScale)
	}
	if cfg.Grace == 0 {
		cfg.Grace = time.Minute
	}
	if cfg.MaxSpread == 0 {
		cfg.MaxSpread = 5 * time.Minute
	}
	if cfg.FutureSkew == 0 {
		cfg.FutureSkew = 5 * time.Minute
	}
	if cfg.SeenFor == 0 {
		cfg.SeenFor = 24 * time.Hour
	}
	if cfg.Grace < 0 || cfg.MaxSpread < 0 || cfg.FutureSkew < 0 || cfg.SeenFor < 0 {
		return nil, errors.New("windowing: Grace, MaxSpread, FutureSkew and SeenFor must not be negative")
	}
	if cfg.SeenPerChat == 0 {
		cfg.SeenPerChat = 1000
	}
	if cfg.Clock == nil {
		cfg.Clock = clockwork.NewRealClock()
	}
	states, err := lru.New[stateKey, chatState](chatStates)
	if err != nil {
		return nil, err
	}
	return &Store{cfg: cfg, states: states}, nil
}

// Scaled divides a nominal duration by the time scale.
func (s *Store) Scaled(d time.Duration) time.Duration {
	return time.Duration(float64(d) / s.cfg.TimeScale)
}

// WindowLength is the length of a window of g after time scaling; zero for None.
func (s *Store) WindowLength(g webhook.Granularity) time.Duration { return s.Scaled(g.Duration()) }

// WindowStart aligns t down to a multiple of length since the Unix epoch (UTC).
// Windows are tumbling: every instant belongs to exactly one window.
func WindowStart(t time.Time, length time.Duration) time.Time {
	if length <= 0 {
		return t
	}
	ms := t.UnixMilli()
	l := length.Milliseconds()
	return time.UnixMilli(ms - mod(ms, l)).UTC()
}

func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

// Assign returns the instant a message is windowed by: its own timestamp, or now
// when the timestamp lies further in the future than the allowed skew.
func (s *Store) Assign(ts, now time.Time) time.Time {
	if ts.After(now.Add(s.Scaled(s.cfg.FutureSkew))) {
		return now
	}
	return ts
}

// flushDelay is how long after its close a window of this chat is flushed.
func (s *Store) flushDelay(chatRef string, length time.Duration) time.Duration {
	spread := min(length/12, s.Scaled(s.cfg.MaxSpread))
	d := s.Scaled(s.cfg.Grace)
	if spread > 0 {
		h := fnv.New32a()
		h.Write([]byte(chatRef))
		d += time.Duration(int64(h.Sum32()) % int64(spread))
	}
	return d
}

// keys names the Redis keys of one partition: its key schema. Every name
// carries the partition's hash tag {pN}, so a script touches one slot.
type keys string

func (s *Store) keys(partition int) keys {
	return keys(s.cfg.Prefix + ":{p" + strconv.Itoa(partition) + "}:")
}

func (k keys) watermark() string             { return string(k) + "wm" }
func (k keys) buffered() string              { return string(k) + "buf" }   // first offset of each open window and queued bundle
func (k keys) due() string                   { return string(k) + "due" }   // open windows by flush time
func (k keys) ready() string                 { return string(k) + "ready" } // chats with a queued bundle by due time
func (k keys) queue(chat string) string      { return string(k) + "q:" + chat }
func (k keys) bundle(member string) string   { return string(k) + "b:" + member }
func (k keys) window(member string) string   { return string(k) + "w:" + member }
func (k keys) messages(member string) string { return string(k) + "m:" + member } // a window's and then its bundle's (append.lua)
func (k keys) chat(chat string) string       { return string(k) + "c:" + chat }   // sealed mark, open window, none details
func (k keys) seen(chat string) string       { return string(k) + "s:" + chat }   // message ids, granularity none
func (k keys) waiting() string               { return string(k) + "waiting" }     // per workspace: open windows, queued bundles

// headKeys are the keys that hold what a queue's head needs besides itself:
// its bundle and the bundle's list of messages, or, for a message of
// granularity none, its chat's state (twice, so that every head names two).
func (k keys) headKeys(chat, head string) (string, string) {
	if isInline(head) {
		return k.chat(chat), k.chat(chat)
	}
	return k.bundle(head), k.messages(head)
}

// isInline says whether a queue entry is a message of granularity none itself
// (append.lua), not the member of a bundle: members start with a workspace id,
// which never holds a control character.
func isInline(head string) bool { return strings.HasPrefix(head, "\x00") }

// noneEntry is a message of granularity none as its chat's queue holds it:
// offset, epoch and new chat flag, then its entry (see append.lua).
// decodeClaim reads it back.
func noneEntry(offset int64, epoch, isNew string, entry []byte) []byte {
	b := make([]byte, 0, 32+len(entry))
	b = append(b, 0)
	b = strconv.AppendInt(b, offset, 10)
	b = append(append(b, sep...), epoch...)
	b = append(append(b, sep...), isNew...)
	return append(append(b, sep...), entry...)
}

// newChatFlag is how append.lua reads a new chat flag.
func newChatFlag(isNew bool) string {
	if isNew {
		return "1"
	}
	return "0"
}

func chatRef(workspace, chat string) string { return workspace + sep + chat }

// Entry is one deliverable message on its way into a window.
type Entry struct {
	Offset      int64
	Workspace   string
	Epoch       int64 // the webhook epoch it is buffered under (webhook.Webhook.Epoch)
	Granularity webhook.Granularity
	Account     schemas.Account
	Chat        schemas.Chat
	Message     Message
}

// AppendResult counts what one Append did.
type AppendResult struct {
	Applied int // messages stored
	// Duplicates counts the messages of granularity none whose id their chat
	// had seen (upstream duplicates). A window keeps its duplicates until its
	// bundle is read (Flusher.Duplicates).
	Duplicates int
}

// Watermark returns the last offset of the partition applied to Redis, or -1.
func (s *Store) Watermark(ctx context.Context, partition int) (int64, error) {
	v, err := s.cfg.Redis.Get(ctx, s.keys(partition).watermark()).Int64()
	if errors.Is(err, redis.Nil) {
		return -1, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading watermark of partition %d: %w", partition, err)
	}
	return v, nil
}

// LostError says that a partition's watermark in Redis is behind the offset
// its consumer already applied there: Redis lost acknowledged writes (a failover
// to a replica that lagged, a restart from an older AOF). Nothing was changed;
// the consumer replays from Kafka.
type LostError struct {
	Partition int
	Applied   int64 // what the caller applied, as it last saw the watermark
	Watermark int64 // what Redis holds now (-1: none)
}

func (e *LostError) Error() string {
	return fmt.Sprintf("partition %d: Redis holds watermark %d, behind offset %d already applied: Redis lost acknowledged writes",
		e.Partition, e.Watermark, e.Applied)
}

// Checkpoint is what Redis holds of a partition's consumption, read at once:
// the watermark, and the oldest offset whose message still waits in an open
// window or a queued bundle (-1 when none does). Every record below Oldest was
// delivered (or dropped); it goes into the offset commit's metadata.
type Checkpoint struct {
	Watermark, Oldest int64
}

// Checkpoint reads the partition's watermark and oldest buffered offset in one
// transaction.
func (s *Store) Checkpoint(ctx context.Context, partition int) (Checkpoint, error) {
	k := s.keys(partition)
	var wm *redis.StringCmd
	var oldest *redis.ZSliceCmd
	_, err := s.cfg.Redis.TxPipelined(ctx, func(p redis.Pipeliner) error {
		wm = p.Get(ctx, k.watermark())
		oldest = p.ZRangeWithScores(ctx, k.buffered(), 0, 0)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return Checkpoint{}, fmt.Errorf("reading checkpoint of partition %d: %w", partition, err)
	}
	cp := Checkpoint{Watermark: -1, Oldest: -1}
	if v, err := wm.Int64(); err == nil {
		cp.Watermark = v
	}
	if z := oldest.Val(); len(z) > 0 {
		cp.Oldest = int64(z[0].Score)
	}
	return cp, nil
}

// Append stores a fetched batch of one partition in one atomic script and moves
// the partition's watermark to through, the batch's last offset (records that
// were skipped or dead-lettered advance it too). Entries at or below the
// watermark are ignored, so re-appending a batch after a crash is a no-op; when
// another consumer applied part of the batch, the rest goes in a second script
// call. Once
// Append returns nil the batch is durable in Redis and its offsets may be
// committed. applied is the watermark the caller last saw (-1: none); a lower
// one in Redis makes Append change nothing and return a *LostError.
func (s *Store) Append(ctx context.Context, partition int, entries []Entry, through, applied int64) (AppendResult, error) {
	for {
		res, ahead, err := s.appendOnce(ctx, partition, entries, through, applied)
		if err != nil {
			return AppendResult{}, fmt.Errorf("appending %d messages to partition %d: %w", len(entries), partition, err)
		}
		switch {
		case ahead >= 0:
			// Another consumer of the partition (a zombie, or the owner
			// before a rebalance) applied records of this batch: they are
			// skipped, and the rest is appended after them.
			entries = slices.DeleteFunc(slices.Clone(entries), func(e Entry) bool { return e.Offset <= ahead })
			applied = ahead
		case res.Applied >= 0:
			return res, nil
		}
		// Or a flusher sealed a window of one of the chats between the read
		// of their state and the script: read again.
	}
}

// A group is what append.lua applies in one step: the messages of a chat
// that go to the same window, or a single message.
type group struct {
	ref, gname   string
	g, start, at int64 // at: the timestamp of its first message (ms)
	epoch, delay int64
	first        int64 // offset of its first message
	isNew        bool
	account      schemas.Account
	chat         schemas.Chat // IsNewChat cleared: a window flag of its own
	ids          []any        // granularity none only: each message's offset and id
	entries      []any
}

// appendOnce is one attempt of Append: it takes the state of the batch's chats
// (as the last append left it, else read), names every key the script may
// touch from it, and runs the script. It reports -1 applied if that state was
// stale or changed meanwhile, and the watermark in Redis as ahead (else -1) if
// it is past applied.
func (s *Store) appendOnce(ctx context.Context, partition int, entries []Entry, through, applied int64) (AppendResult, int64, error) {
	k := s.keys(partition)
	now := s.cfg.Clock.Now()
	var order []string // chat refs of windowed entries, as first met
	read := map[string]chatState{}
	reads := map[string]*redis.SliceCmd{}
	met := map[string]bool{}
	refs := make([]string, len(entries)) // each entry's chat ref, built once
	pipe := s.cfg.Redis.Pipeline()
	for i, e := range entries {
		ref := chatRef(e.Workspace, e.Chat.ChatID)
		refs[i] = ref
		if e.Granularity == webhook.None || met[ref] {
			continue
		}
		met[ref] = true
		order = append(order, ref)
		if st, ok := s.states.Get(stateKey{partition, ref}); ok {
			read[ref] = st
		} else {
			reads[ref] = pipe.HMGet(ctx, k.chat(ref), "sealed", "os", "oe", "og", "oep")
		}
	}
	if len(reads) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return AppendResult{}, -1, err
		}
	}
	for ref, cmd := range reads {
		v := make([]string, 5)
		for i, f := range cmd.Val() {
			v[i], _ = f.(string)
		}
		read[ref] = chatState{v[0], v[1], v[2], v[3], v[4]}
	}
	// A chat's windowed messages share groups by window when the script's
	// choice of window cannot depend on their timestamps: they all have the
	// same granularity and epoch, and the chat's open window is not one of
	// another granularity under that epoch (append.lua then keeps a window
	// of the old size). Otherwise each message is a group of its own. A
	// chat's messages of granularity none are one group: they all join the
	// chat's queue.
	type route struct {
		gname string
		epoch int64
		packs bool
	}
	routes := map[string]*route{}
	for i, e := range entries {
		if e.Granularity == webhook.None {
			continue
		}
		ref := refs[i]
		if r := routes[ref]; r == nil {
			st := read[ref]
			gname := string(e.Granularity)
			routes[ref] = &route{gname, e.Epoch, st.og == "" || st.og == gname || st.oep != strconv.FormatInt(e.Epoch, 10)}
		} else if r.gname != string(e.Granularity) || r.epoch != e.Epoch {
			r.packs = false
		}
	}

	var groups []*group
	shared := map[string]*group{} // by window, or by chat for granularity none
	for i, e := range entries {
		ref := refs[i]
		length := s.WindowLength(e.Granularity)
		at := s.Assign(e.Message.At, now)
		start := WindowStart(at, length).UnixMilli()
		d := e.Chat
		d.IsNewChat = false
		var gr *group
		var share string // the group's key, when the chat's messages share groups
		if e.Granularity == webhook.None {
			share = ref // a window's key has more parts: the two never meet
		} else if r := routes[ref]; r.packs {
			share = strings.Join([]string{ref, string(e.Granularity), strconv.FormatInt(start, 10), strconv.FormatInt(e.Epoch, 10)}, sep)
		}
		if share != "" {
			gr = shared[share]
		}
		if gr == nil {
			gr = &group{ref: ref, gname: string(e.Granularity), g: length.Milliseconds(), start: start, at: at.UnixMilli(),
				epoch: e.Epoch, delay: s.flushDelay(ref, length).Milliseconds(), first: e.Offset}
			groups = append(groups, gr)
			if share != "" {
				shared[share] = gr
			}
		}
		gr.isNew = gr.isNew || e.Chat.IsNewChat
		gr.account, gr.chat = e.Account, d // a window's details are its last message's
		entry := encodeEntry(e.Message, e.Offset)
		if e.Granularity == webhook.None {
			// Its queue entry is built here, not in the script, where it
			// would be one more copy of the record for Redis to make and
			// collect.
			gr.ids = append(gr.ids, e.Offset, e.Message.ID)
			entry = noneEntry(e.Offset, strconv.FormatInt(e.Epoch, 10), newChatFlag(e.Chat.IsNewChat), entry)
		}
		gr.entries = append(gr.entries, entry)
	}

	keys := []string{k.watermark(), k.due(), k.ready()}
	var labels []any
	declared := map[string]bool{}
	declare := func(label, key string) {
		if !declared[label] {
			declared[label] = true
			labels = append(labels, label)
			keys = append(keys, key)
		}
	}
	declare("o", k.buffered())
	window := func(ref, gname string, start, end int64, epoch string) {
		member := strings.Join([]string{ref, gname, strconv.FormatInt(start, 10), strconv.FormatInt(end, 10), epoch}, sep)
		declare("w"+member, k.window(member))
		declare("m"+member, k.messages(member))
	}
	type details struct {
		account schemas.Account
		chat    schemas.Chat
	}
	sent := map[string]details{} // chat ref -> details sent last in this batch
	args := make([]any, 0, 7+len(labels)+6*len(order)+12*len(groups)+3*len(entries))
	var tail []any
	for _, gr := range groups {
		epoch := strconv.FormatInt(gr.epoch, 10)
		declare("c"+gr.ref, k.chat(gr.ref))
		if gr.g == 0 {
			declare("s"+gr.ref, k.seen(gr.ref))
			declare("q"+gr.ref, k.queue(gr.ref))
		} else {
			// The windows the script may pick (see append.lua): the group's
			// own, the first after the sealed mark, or the chat's open one.
			st := read[gr.ref]
			window(gr.ref, gr.gname, gr.start, gr.start+gr.g, epoch)
			if sealed, _ := strconv.ParseInt(st.sealed, 10, 64); gr.start < sealed {
				after := sealed - sealed%gr.g
				if after < sealed {
					after += gr.g
				}
				window(gr.ref, gr.gname, after, after+gr.g, epoch)
			}
			if st.og != "" {
				openStart, _ := strconv.ParseInt(st.os, 10, 64)
				openEnd, _ := strconv.ParseInt(st.oe, 10, 64)
				window(gr.ref, st.og, openStart, openEnd, st.oep)
			}
		}
		var encoded []byte // empty: the script reuses the chat's previous details
		d := details{gr.account, gr.chat}
		if prev, ok := sent[gr.ref]; !ok || prev != d {
			encoded = encodeDetails(gr.account, gr.chat)
			sent[gr.ref] = d
		}
		if gr.g == 0 {
			tail = append(tail, gr.ref, gr.gname, len(gr.entries), encoded)
			tail = append(tail, gr.ids...)
		} else {
			tail = append(tail, gr.ref, gr.gname, gr.g, gr.start, gr.at, epoch, gr.delay, gr.first, newChatFlag(gr.isNew), encoded, len(gr.entries))
		}
		tail = append(tail, gr.entries...)
	}
	seenFor := max(s.Scaled(s.cfg.SeenFor).Milliseconds(), 1)
	args = append(args, now.UnixMilli(), through, applied, s.cfg.SeenPerChat, seenFor, len(labels))
	args = append(args, labels...)
	args = append(args, len(order))
	for _, ref := range order {
		st := read[ref]
		args = append(args, ref, st.sealed, st.os, st.oe, st.og, st.oep)
	}
	args = append(args, tail...)
	out, err := appendScript.Run(ctx, s.cfg.Redis, append(keys, k.waiting()), args...).Slice()
	if err != nil {
		return AppendResult{}, -1, err
	}
	code, second, err := appendCounts(out)
	if err != nil {
		return AppendResult{}, -1, err
	}
	switch code {
	case -1:
		for _, ref := range order {
			s.states.Remove(stateKey{partition, ref})
		}
		return AppendResult{Applied: -1}, -1, nil
	case -2:
		return AppendResult{}, -1, &LostError{Partition: partition, Applied: applied, Watermark: second}
	case -3:
		// Nothing was checked, and the state is as fresh as it gets.
		s.remember(partition, order, read, nil)
		return AppendResult{Applied: -1}, second, nil
	}
	s.remember(partition, order, read, out[2:])
	return AppendResult{Applied: int(code), Duplicates: int(second)}, -1, nil
}

// appendCounts reads the two numbers that start append.lua's reply.
func appendCounts(out []any) (int64, int64, error) {
	if len(out) >= 2 {
		a, okA := out[0].(int64)
		b, okB := out[1].(int64)
		if okA && okB {
			return a, b, nil
		}
	}
	return 0, 0, fmt.Errorf("unexpected reply of the append script: %v", out)
}

// remember keeps the state of the batch's chats as the script left it: as
// read, but for the chats whose open window it moved, which it names in
// changed (ref, then start, end, granularity and epoch).
func (s *Store) remember(partition int, order []string, read map[string]chatState, changed []any) {
	for i := 0; i+4 < len(changed); i += 5 {
		ref, _ := changed[i].(string)
		st := read[ref]
		st.os, _ = changed[i+1].(string)
		st.oe, _ = changed[i+2].(string)
		st.og, _ = changed[i+3].(string)
		st.oep, _ = changed[i+4].(string)
		read[ref] = st
	}
	for _, ref := range order {
		s.states.Add(stateKey{partition, ref}, read[ref])
	}
}

// Seal turns the partition's windows whose flush time is at or before upTo into
// bundles ready for delivery and returns how many it sealed. The caller passes the
// earlier of now and the time up to which the partition has been consumed, so a
// lagging consumer never seals a window whose messages are still unread, and the
// watermark its consumer applied (-1: none): should Redis hold a lower one, it
// lost writes that the replay from Kafka has yet to restore, and Seal returns a
// *LostError without sealing anything.
func (s *Store) Seal(ctx context.Context, partition int, upTo time.Time, applied int64, limit int) (int, error) {
	k := s.keys(partition)
	due, err := s.cfg.Redis.ZRangeByScore(ctx, k.due(), &redis.ZRangeBy{Min: "-inf",
		Max: strconv.FormatInt(upTo.UnixMilli(), 10), Count: int64(limit)}).Result()
	if err != nil || len(due) == 0 {
		return 0, wrapSeal(partition, err)
	}
	keys := make([]string, 0, 3+4*len(due))
	keys = append(keys, k.due(), k.ready(), k.watermark())
	args := make([]any, 0, 2+3*len(due))
	args = append(args, s.cfg.Clock.Now().UnixMilli(), applied)
	for _, member := range due {
		parts := strings.Split(member, sep)
		if len(parts) != 6 {
			return 0, wrapSeal(partition, fmt.Errorf("window %q: %w", member, errCorrupt))
		}
		chat := chatRef(parts[0], parts[1])
		keys = append(keys, k.window(member), k.bundle(member), k.queue(chat), k.chat(chat))
		args = append(args, member, chat, parts[4])
	}
	n, err := sealScript.Run(ctx, s.cfg.Redis, append(keys, k.waiting()), args...).Int()
	if err == nil && n < 0 {
		wm, werr := s.Watermark(ctx, partition)
		err = errors.Join(&LostError{Partition: partition, Applied: applied, Watermark: wm}, werr)
	}
	return n, wrapSeal(partition, err)
}

func wrapSeal(partition int, err error) error {
	if err != nil {
		return fmt.Errorf("sealing windows of partition %d: %w", partition, err)
	}
	return nil
}

// Claimed is a bundle leased to this worker for one delivery attempt.
type Claimed struct {
	Bundle
	partition int
	chat      string
	member    string
	leaseEnd  time.Time // on the Store's clock
	// duplicates is how many upstream duplicates reading the bundle dropped.
	duplicates int
}

// Claim leases up to limit chats of the partition whose head bundle is due and
// returns those bundles. Until the lease ends (or Ack/Retry) no other worker gets
// the chat. perWorkspace (0: no cap) caps the chats claimed per workspace, and
// remaining lowers it for the workspaces named; chats over the cap stay due.
func (s *Store) Claim(ctx context.Context, partition, limit int, lease time.Duration, perWorkspace int, remaining map[string]int) ([]Claimed, error) {
	return s.claim(ctx, partition, limit, lease, perWorkspace, remaining, claimHooks{})
}

// claimHooks let the Flusher take part in a claim.
type claimHooks struct {
	// also, when set, adds reads of the caller's own about the due chats'
	// workspaces to the round trip that reads their heads.
	also func(pipe redis.Pipeliner, workspaces []string)
	// due, when set, is told how many chats the claim may lease at most,
	// once it has read which are due.
	due func(n int)
}

// claim is Claim with the caller's hooks.
func (s *Store) claim(ctx context.Context, partition, limit int, lease time.Duration, perWorkspace int, remaining map[string]int,
	hooks claimHooks) ([]Claimed, error) {
	k := s.keys(partition)
	now := s.cfg.Clock.Now()
	leaseEnd := now.Add(lease)
	// Read which chats are due and their heads, then claim them in one script
	// that checks both again: every key it touches is named here.
	chats, err := s.dueChats(ctx, k, now, limit, perWorkspace, remaining)
	if hooks.due != nil {
		hooks.due(min(limit, len(chats)))
	}
	if err != nil || len(chats) == 0 {
		return nil, wrapClaim(partition, err)
	}
	limit = min(limit, len(chats))
	// First every chat without reading its head: the script claims the heads
	// that are messages of granularity none and names the others, bundles,
	// whose keys it needs. The caller's own reads share the round trip.
	call := func(chats, heads []string, limit int, remaining map[string]int) ([]string, []any) {
		keys := make([]string, 0, 1+3*len(chats))
		keys = append(keys, k.ready())
		args := make([]any, 0, 5+2*len(chats)+2*len(remaining))
		args = append(args, now.UnixMilli(), leaseEnd.UnixMilli(), limit, perWorkspace, len(chats))
		for i, chat := range chats {
			if heads == nil {
				keys = append(keys, k.queue(chat), k.chat(chat), k.chat(chat))
				args = append(args, chat, "")
			} else {
				keys = append(keys, k.queue(chat), k.bundle(heads[i]), k.messages(heads[i]))
				args = append(args, chat, heads[i])
			}
		}
		for ws, n := range remaining {
			args = append(args, ws, n)
		}
		return keys, args
	}
	keys, args := call(chats, nil, limit, remaining)
	pipe := s.cfg.Redis.Pipeline()
	first := claimScript.EvalSha(ctx, pipe, keys, args...)
	if hooks.also != nil {
		hooks.also(pipe, workspacesOf(chats))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) && !redis.HasErrorPrefix(err, "NOSCRIPT") {
		return nil, wrapClaim(partition, err)
	}
	raw, err := first.Slice()
	if redis.HasErrorPrefix(err, "NOSCRIPT") { // Redis restarted: a pipeline cannot load it
		raw, err = claimScript.Run(ctx, s.cfg.Redis, keys, args...).Slice()
	}
	if err != nil {
		return nil, wrapClaim(partition, err)
	}
	out, bundles, heads, err := decodeClaims(partition, raw, leaseEnd)
	if err != nil || len(bundles) == 0 || len(out) == limit {
		return out, err
	}
	// Then the chats whose head is a bundle, naming it, within what the first
	// script left of the limit and of each workspace's headroom.
	left := maps.Clone(remaining)
	if left == nil {
		left = map[string]int{}
	}
	for _, c := range out {
		if n, ok := left[c.Workspace]; ok {
			left[c.Workspace] = n - 1
		} else {
			left[c.Workspace] = perWorkspace - 1
		}
	}
	keys, args = call(bundles, heads, limit-len(out), left)
	raw, err = claimScript.Run(ctx, s.cfg.Redis, keys, args...).Slice()
	if err != nil {
		return out, wrapClaim(partition, err)
	}
	more, _, _, err := decodeClaims(partition, raw, leaseEnd)
	return append(out, more...), err
}

// decodeClaims reads claim.lua's reply: the bundles claimed, and the chats
// (with their heads) whose head is a bundle the script was not told of.
func decodeClaims(partition int, raw []any, leaseEnd time.Time) (out []Claimed, chats, heads []string, err error) {
	for _, r := range raw {
		row, _ := r.([]any)
		switch len(row) {
		case 2:
			chat, _ := row[0].(string)
			head, _ := row[1].(string)
			chats, heads = append(chats, chat), append(heads, head)
		case 3, 4:
			c, err := decodeClaim(partition, row)
			if err != nil {
				return out, nil, nil, fmt.Errorf("decoding bundle of partition %d: %w", partition, err)
			}
			c.leaseEnd = leaseEnd
			out = append(out, c)
		default:
			return out, nil, nil, fmt.Errorf("claiming bundles of partition %d: unexpected reply %T", partition, r)
		}
	}
	return out, chats, heads, nil
}

// dueChats reads the due chats that a claim of up to limit may take, in the
// ready index's order, leaving out the chats of workspaces that are at their
// cap (perWorkspace, lowered by remaining); one more than limit, and one more
// than a workspace's headroom, in case one was leased or finished since this
// read. Only one more: a partition's chats are claimed by one flusher loop, so
// that is rare (a handover), and every candidate costs a read of its head.
// Chats due at one instant sort by workspace, so the first page may hold one
// workspace's chats alone; further pages are read while that cap leaves the
// claim short, up to a few.
func (s *Store) dueChats(ctx context.Context, k keys, now time.Time, limit, perWorkspace int, remaining map[string]int) ([]string, error) {
	// Pages of at least 128: a small claim (one slot freed) still looks past
	// a few workspaces at their cap without a round trip per chat.
	const maxPages = 4
	page := max(4*limit, 128)
	var out []string
	taken := map[string]int{}
	for i := range maxPages {
		chats, err := s.cfg.Redis.ZRangeByScore(ctx, k.ready(), &redis.ZRangeBy{Min: "-inf",
			Max: strconv.FormatInt(now.UnixMilli(), 10), Offset: int64(i * page), Count: int64(page)}).Result()
		if err != nil {
			return nil, err
		}
		for _, chat := range chats {
			ws, _, _ := strings.Cut(chat, sep)
			if perWorkspace > 0 {
				left, ok := remaining[ws]
				if !ok {
					left = perWorkspace
				}
				// One over the headroom: a chat leased or finished since this
				// read leaves room for the next one. None at the cap.
				if left == 0 || taken[ws] > left {
					continue
				}
			}
			taken[ws]++
			if out = append(out, chat); len(out) > limit {
				return out, nil
			}
		}
		if len(chats) < page || perWorkspace == 0 {
			return out, nil
		}
	}
	return out, nil
}

// workspacesOf lists the workspaces of chat refs, each once.
func workspacesOf(chats []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, chat := range chats {
		ws, _, _ := strings.Cut(chat, sep)
		if !seen[ws] {
			seen[ws] = true
			out = append(out, ws)
		}
	}
	return out
}

func wrapClaim(partition int, err error) error {
	if err != nil {
		return fmt.Errorf("claiming bundles of partition %d: %w", partition, err)
	}
	return nil
}

// decodeClaim reads one claimed head of claim.lua's reply: chat ref, head,
// the fields of its bundle (or of the message's chat), then a bundle's list
// of messages.
func decodeClaim(partition int, row []any) (Claimed, error) {
	chat, _ := row[0].(string)
	member, _ := row[1].(string)
	fields, _ := row[2].([]any)
	var parts []string // workspace, chat, granularity, window start, end, epoch
	var msgs []stored
	isNew := false
	if isInline(member) {
		// offset, epoch, new chat flag, then the record (append.lua)
		head := strings.SplitN(member[1:], sep, 4)
		ws, chatID, ok := strings.Cut(chat, sep)
		if len(head) != 4 || !ok {
			return Claimed{}, fmt.Errorf("message %q of chat %q: %w", member, chat, errCorrupt)
		}
		entries, err := decodeChunk([]byte(head[3]))
		if err != nil {
			return Claimed{}, fmt.Errorf("message %q of chat %q: %w", member, chat, err)
		}
		parts = []string{ws, chatID, string(webhook.None), "", "", head[1]}
		msgs, isNew = entries, head[2] == "1"
	} else if parts = strings.Split(member, sep); len(parts) != 6 {
		return Claimed{}, fmt.Errorf("bundle %q: %w", member, errCorrupt)
	}
	c := Claimed{partition: partition, chat: chat, member: member}
	b := &c.Bundle
	b.Workspace, b.ChatID, b.Granularity = parts[0], parts[1], webhook.Granularity(parts[2])
	epoch, err := strconv.ParseInt(parts[5], 10, 64)
	if err != nil {
		return Claimed{}, fmt.Errorf("bundle %q: epoch: %w", member, err)
	}
	b.Epoch = epoch
	for i := 0; i+1 < len(fields); i += 2 {
		k, _ := fields[i].(string)
		v, _ := fields[i+1].(string)
		switch {
		case k == fieldDetails:
			if b.Account, b.Chat, err = decodeDetails([]byte(v)); err != nil {
				return Claimed{}, fmt.Errorf("bundle %q: details: %w", member, err)
			}
		case k == fieldNewChat:
			isNew = true
		case k == fieldAttempt:
			b.Attempt, _ = strconv.Atoi(v)
		case k == fieldPart:
			if _, err := fmt.Sscan(v, &b.Part, &b.Sent); err != nil {
				return Claimed{}, fmt.Errorf("bundle %q: progress %q: %w", member, v, err)
			}
		case k == fieldFullChunks || k == fieldMessages:
		case k == fieldOpenChunk || strings.HasPrefix(k, fullChunkPrefix):
			entries, err := decodeChunk([]byte(v))
			if err != nil {
				return Claimed{}, fmt.Errorf("bundle %q: chunk %q: %w", member, k, err)
			}
			msgs = append(msgs, entries...)
		default: // a message of a window written before packing, under its id
			m, off, err := decodeMessage(k, []byte(v))
			if err != nil {
				return Claimed{}, fmt.Errorf("bundle %q: message %q: %w", member, k, err)
			}
			msgs = append(msgs, stored{m, off})
		}
	}
	if len(row) > 3 {
		list, _ := row[3].([]any)
		for _, e := range list {
			v, _ := e.(string)
			entries, err := decodeChunk([]byte(v))
			if err != nil {
				return Claimed{}, fmt.Errorf("bundle %q: message list: %w", member, err)
			}
			msgs = append(msgs, entries...)
		}
	}
	msgs, c.duplicates = firstOfEachID(msgs)
	sort.Slice(msgs, func(i, j int) bool {
		if !msgs[i].m.At.Equal(msgs[j].m.At) {
			return msgs[i].m.At.Before(msgs[j].m.At)
		}
		return msgs[i].offset < msgs[j].offset
	})
	b.Messages = make([]Message, len(msgs))
	for i, m := range msgs {
		b.Messages[i] = m.m
	}
	b.Chat.IsNewChat = isNew
	if b.Granularity == webhook.None {
		if len(b.Messages) != 1 {
			return Claimed{}, fmt.Errorf("bundle %q: %d messages in a single-message bundle: %w", member, len(b.Messages), errCorrupt)
		}
		b.ID = bundleID(b.Workspace, b.ChatID, "msg", b.Messages[0].ID, parts[5])
	} else {
		start, err := strconv.ParseInt(parts[3], 10, 64)
		if err != nil {
			return Claimed{}, fmt.Errorf("bundle %q: window start: %w", member, err)
		}
		b.WindowStart = time.UnixMilli(start).UTC()
		b.ID = bundleID(b.Workspace, b.ChatID, parts[2], parts[3], parts[5])
	}
	return c, nil
}

// firstOfEachID keeps, of the messages that share an id (an upstream duplicate,
// or a record appended again after Redis lost writes), the first appended: the
// lowest offset. It returns how many it dropped.
func firstOfEachID(msgs []stored) ([]stored, int) {
	first := make(map[string]int, len(msgs)) // id -> index in out
	out := msgs[:0]
	for _, s := range msgs {
		if i, ok := first[s.m.ID]; ok {
			if s.offset < out[i].offset {
				out[i] = s
			}
			continue
		}
		first[s.m.ID] = len(out)
		out = append(out, s)
	}
	return out, len(msgs) - len(out)
}

// bundleID is the stable webhook-id of a bundle: the same whichever worker
// delivers it and however often, so receivers can de-duplicate.
func bundleID(parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, sep)))
	return "obw_" + hex.EncodeToString(h[:16])
}

// Ack removes a claimed bundle after delivery (or a deliberate drop) and lets the
// chat's next bundle go. An ack whose lease was lost meanwhile is a no-op.
func (s *Store) Ack(ctx context.Context, c Claimed) error {
	return s.settle(ctx, c, Outcome{Done: true})
}

// Retry keeps a claimed bundle at the head of its chat, records its progress
// (c.Part and c.Sent), and makes it due at at.
func (s *Store) Retry(ctx context.Context, c Claimed, at time.Time) error {
	return s.settle(ctx, c, Outcome{RetryAt: at})
}

// settle records what a Deliverer decided about c: an ack when out is done,
// else a retry at out.RetryAt, one part further when out delivered one.
func (s *Store) settle(ctx context.Context, c Claimed, out Outcome) error {
	script, keys, args := s.settlement(c, out)
	return settleErr(c, out, script.Run(ctx, s.cfg.Redis, keys, args...).Err())
}

// queueSettle queues settle on a Deliverer's pipeline (Bundle.Settle); once
// that is sent, settled checks the reply.
func (s *Store) queueSettle(ctx context.Context, pipe redis.Pipeliner, c Claimed, out Outcome) *redis.Cmd {
	script, keys, args := s.settlement(c, out)
	return script.EvalSha(ctx, pipe, keys, args...)
}

// settled checks the reply of a queued settle, and runs it again when Redis
// had lost the script (a restart empties its cache; a pipeline cannot load it).
func (s *Store) settled(ctx context.Context, cmd *redis.Cmd, c Claimed, out Outcome) error {
	if redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
		return s.settle(ctx, c, out)
	}
	return settleErr(c, out, cmd.Err())
}

func (s *Store) settlement(c Claimed, out Outcome) (*redis.Script, []string, []any) {
	k := s.keys(c.partition)
	if out.Done {
		keys := []string{k.ready(), k.queue(c.chat), k.chat(c.chat), k.buffered()}
		if !isInline(c.member) {
			keys = append(keys, k.bundle(c.member), k.messages(c.member))
		}
		return ackScript, append(keys, k.waiting()), []any{c.chat, c.member, s.cfg.Clock.Now().UnixMilli()}
	}
	head, _ := k.headKeys(c.chat, c.member)
	keys := []string{k.ready(), k.queue(c.chat), head}
	if out.PartMessages > 0 {
		c.Part++
		c.Sent += out.PartMessages
	}
	return retryScript, keys, []any{c.chat, c.member, out.RetryAt.UnixMilli(), fmt.Sprint(c.Part, " ", c.Sent)}
}

func settleErr(c Claimed, out Outcome, err error) error {
	switch {
	case err == nil:
		return nil
	case out.Done:
		return fmt.Errorf("acknowledging bundle %s: %w", c.ID, err)
	}
	return fmt.Errorf("rescheduling bundle %s: %w", c.ID, err)
}

// Pending counts the partition's open windows and queued chats, for metrics and
// tests.
func (s *Store) Pending(ctx context.Context, partition int) (windows, chats int64, err error) {
	k := s.keys(partition)
	pipe := s.cfg.Redis.Pipeline()
	w := pipe.ZCard(ctx, k.due())
	c := pipe.ZCard(ctx, k.ready())
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, 0, fmt.Errorf("counting pending windows of partition %d: %w", partition, err)
	}
	return w.Val(), c.Val(), nil
}

// Waiting is what a workspace has pending in the windowing stage.
type Waiting struct {
	Windows int // open windows, not yet sealed
	Bundles int // sealed bundles (or single messages) queued for delivery
}

// Waiting counts workspace's open windows and queued bundles over partitions
// 0..partitions-1 with one pipelined read: every script that opens, seals,
// delivers or drops keeps the per-partition counts (lua/waiting.prelude.lua).
func (s *Store) Waiting(ctx context.Context, partitions int, workspace string) (Waiting, error) {
	var w Waiting
	if partitions <= 0 {
		return w, nil
	}
	pipe := s.cfg.Redis.Pipeline()
	cmds := make([]*redis.SliceCmd, partitions)
	for p := range partitions {
		cmds[p] = pipe.HMGet(ctx, s.keys(p).waiting(), "w"+workspace, "b"+workspace)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return Waiting{}, fmt.Errorf("counting what %s has waiting: %w", workspace, err)
	}
	for _, c := range cmds {
		v := c.Val() // nil for an absent field: none waiting
		windows, _ := v[0].(string)
		bundles, _ := v[1].(string)
		w.Windows += atoi(windows)
		w.Bundles += atoi(bundles)
	}
	return w, nil
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// DropWorkspace removes the workspace's open windows and queued bundles from one
// partition and says how many there were. It reads the partition's indexes,
// which is fine for what calls it: an operator disabling or deleting a webhook.
func (s *Store) DropWorkspace(ctx context.Context, partition int, workspace string) (windows, bundles int, err error) {
	for {
		windows, bundles, err = s.dropWorkspace(ctx, partition, workspace)
		if err != nil {
			return 0, 0, fmt.Errorf("dropping pending windows of %s in partition %d: %w", workspace, partition, err)
		}
		if windows >= 0 {
			return windows, bundles, nil
		}
		// A queue changed between the read and the script: read again.
	}
}

// dropWorkspace is one attempt of DropWorkspace; -1 windows when a queue
// changed since it was read.
func (s *Store) dropWorkspace(ctx context.Context, partition int, workspace string) (windows, bundles int, err error) {
	k := s.keys(partition)
	mine := func(s string) bool { return strings.HasPrefix(s, workspace+sep) }
	pipe := s.cfg.Redis.Pipeline()
	dueCmd := pipe.ZRange(ctx, k.due(), 0, -1)
	readyCmd := pipe.ZRange(ctx, k.ready(), 0, -1)
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, 0, err
	}
	keys := []string{k.due(), k.ready()}
	args := []any{0}
	for _, member := range dueCmd.Val() {
		if mine(member) {
			keys = append(keys, k.window(member), k.messages(member))
			args = append(args, member)
		}
	}
	args[0] = len(args) - 1
	var chats []string
	queues := map[string]*redis.StringSliceCmd{}
	for _, chat := range readyCmd.Val() {
		if mine(chat) {
			chats = append(chats, chat)
			queues[chat] = pipe.LRange(ctx, k.queue(chat), 0, -1)
		}
	}
	if len(chats) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return 0, 0, err
		}
	}
	for _, chat := range chats {
		members := queues[chat].Val()
		keys = append(keys, k.queue(chat), k.chat(chat))
		args = append(args, chat, len(members))
		for _, m := range members {
			head, list := k.headKeys(chat, m)
			keys = append(keys, head, list)
			args = append(args, m)
		}
	}
	n, err := dropScript.Run(ctx, s.cfg.Redis, append(keys, k.buffered(), k.waiting()), args...).Int64Slice()
	if err != nil {
		return 0, 0, err
	}
	return int(n[0]), int(n[1]), nil
}
