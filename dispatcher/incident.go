package dispatcher

import (
	"context"
	"log/slog"
	"time"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/storage"
)

// SupersedeWait is how long a follow-up's dispatch waits, once it has
// cancelled what the earlier messages of its incident had not sent, before
// its own sends go: workers trust a post they loaded for up to their post
// cache's time (worker.DefaultPostCacheTTL, 250 ms), so a send of the old
// message taken just before the cancellation would otherwise reach a phone
// after the new one, and replace it there (one collapse id per incident).
const SupersedeWait = 300 * time.Millisecond

// supersede cancels, for an update or a cancel, the unsent rest of the
// messages it replaces, then waits out SupersedeWait. Run again after an
// interruption, it cancels nothing more.
func (d *Dispatcher) supersede(ctx context.Context, post storage.Post) error {
	if post.IncidentID == 0 || post.MsgType == crier.MsgAlert || post.State != crier.PostAccepted {
		return nil
	}
	n, err := d.db.SupersedeEarlier(ctx, post)
	if err != nil {
		return err
	}
	d.cfg.Logger.Info("follow-up supersedes its incident's earlier messages", slog.Int64("post_id", post.ID),
		slog.Int64("incident_id", post.IncidentID), slog.String("msg_type", string(post.MsgType)), slog.Int("cancelled_sends", n))
	select {
	case <-time.After(SupersedeWait):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
