package processor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/outbound-webhooks/outbound/internal/webhooklog"
	"github.com/outbound-webhooks/outbound/webhook"
)

// sweepTimeout bounds one workspace's sweep; an operator's disable is not worth
// holding the sweeper for longer, and the sink's epoch check catches the rest.
const sweepTimeout = 10 * time.Second

// SweepDisabled drops the open windows and queued bundles of every webhook that
// changes goes on to disable or delete, in the partitions this member owns at
// that moment (each member sweeps its own), and says how many in the activity
// log. It runs on its own goroutine until ctx ends, so a slow sweep never holds
// up the control reader that pushes the changes. Bundles that escape the sweep (a
// batch appended at that moment, or a partition that moves here later) are
// dropped by the sink when their turn comes: they are older than the webhook's
// next enable.
func (c *Consumer) SweepDisabled(ctx context.Context, changes *webhook.Feed, activity *webhooklog.Log) error {
	for {
		ch, err := changes.Next(ctx)
		if err != nil {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return nil
			}
			return err
		}
		if ch.Disabled() {
			// A deleted workspace's logs are purged (control.Reader): a
			// line there would outlive the delete.
			c.sweep(ctx, ch.Workspace(), ch.NewOK, activity)
		}
	}
}

// sweep drops ws's pending windows and bundles and, unless ws was deleted,
// says so in its activity log.
func (c *Consumer) sweep(ctx context.Context, ws string, exists bool, activity *webhooklog.Log) {
	ctx, cancel := context.WithTimeout(ctx, sweepTimeout)
	defer cancel()
	log := c.cfg.Logger.With(zap.String("workspace", ws))
	var windows, bundles int
	owned := c.Owned()
	for _, p := range owned {
		wn, bn, err := c.cfg.Store.DropWorkspace(ctx, p, ws)
		if err != nil {
			log.Warn("dropping pending windows", zap.Int("partition", p), zap.Error(err))
			continue
		}
		windows, bundles = windows+wn, bundles+bn
	}
	if windows+bundles == 0 || !exists {
		return
	}
	err := activity.RecordActivity(ctx, ws, webhooklog.Activity{At: c.cfg.Clock.Now().UTC(), Action: webhooklog.ActionDropped,
		Detail: fmt.Sprintf("dropped %d open windows and %d queued bundles pending at the disable (partitions %v)", windows, bundles, owned)})
	if err != nil {
		log.Warn("recording dropped windows", zap.Error(err))
	}
}
