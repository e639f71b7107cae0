package publish

import (
	"context"
	"errors"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/storage"
)

// ApproveAlert releases an alert (or an update) that waits for a second
// person: another key of the municipality than the one that created it.
// Once approved it goes at once.
func (s *Service) ApproveAlert(ctx context.Context, p crier.Principal, id int64) (storage.Post, error) {
	if err := p.MaySendAlerts(); err != nil {
		return storage.Post{}, err
	}
	post, err := s.db.ApprovePost(ctx, p.TenantID, id, p.KeyID, s.cfg.Now())
	switch {
	case errors.Is(err, storage.ErrSelfApproval):
		return storage.Post{}, crier.Forbidden("id", "alert %d was created with this key: a second person approves it, with a key of their own", id)
	case errors.Is(err, storage.ErrLapsed):
		return storage.Post{}, crier.Errorf(crier.ECONFLICT, "id", "alert %d lapsed unapproved: send it again if it is still needed", id)
	case errors.Is(err, storage.ErrNotAwaiting):
		return storage.Post{}, crier.Errorf(crier.ECONFLICT, "id", "alert %d does not wait for approval", id)
	case err != nil:
		return storage.Post{}, err
	}
	return post, s.enqueueDispatch(ctx, post)
}

// TestDevices lists the tenant's test devices: where exercises and tests go.
func (s *Service) TestDevices(ctx context.Context, p crier.Principal) ([]string, error) {
	if err := p.MaySendAlerts(); err != nil {
		return nil, err
	}
	return s.db.TestDevices(ctx, p.TenantID)
}

// MaxTestDevices bounds one change of test devices.
const MaxTestDevices = 1000

// SetTestDevices marks installations as the tenant's test devices (test
// true) or unmarks them, and returns those it does not know.
func (s *Service) SetTestDevices(ctx context.Context, p crier.Principal, installations []string, test bool) ([]string, error) {
	if err := p.MaySendAlerts(); err != nil {
		return nil, err
	}
	switch {
	case len(installations) == 0:
		return nil, crier.Invalid("installation_ids", "name at least one installation")
	case len(installations) > MaxTestDevices:
		return nil, crier.Invalid("installation_ids", "at most %d at once, not %d", MaxTestDevices, len(installations))
	}
	for i, id := range installations {
		if id == "" || len(id) > 200 {
			return nil, crier.Invalid("installation_ids", "entry %d: an installation id is 1 to 200 characters", i)
		}
	}
	unknown, err := s.db.SetTestDevices(ctx, p.TenantID, installations, test)
	if unknown == nil {
		unknown = []string{}
	}
	return unknown, err
}

// Incident is an incident as its status shows it: its messages, the first
// first, each with what became of its deliveries.
type Incident struct {
	ID       int64
	Exercise bool
	Messages []Status
}

// IncidentStatus reads the incident of an alert by the id of any of its
// messages.
func (s *Service) IncidentStatus(ctx context.Context, p crier.Principal, id int64) (Incident, error) {
	post, err := s.visiblePost(ctx, p, id)
	if err != nil {
		return Incident{}, err
	}
	if post.IncidentID == 0 {
		return Incident{}, crier.Invalid("id", "post %d is no alert", id)
	}
	msgs, err := s.db.Incident(ctx, p.TenantID, post.IncidentID)
	if err != nil {
		return Incident{}, err
	}
	inc := Incident{ID: post.IncidentID, Exercise: msgs[0].Exercise}
	for _, m := range msgs {
		st, err := s.status(ctx, p, m)
		if err != nil {
			return Incident{}, err
		}
		inc.Messages = append(inc.Messages, st)
	}
	return inc, nil
}
