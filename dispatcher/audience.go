package dispatcher

import (
	"fmt"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/segments"
	"github.com/crier-push/crier/storage"
)

// Audience compiles who a post is for (segments.Audience) for the
// snapshot's statement.
func Audience(p storage.Post) (storage.Audience, error) {
	e, why, err := segments.Explained(segments.Post{Feed: p.FeedSlug, FeedMandatory: p.FeedMandatory, Tags: p.Tags,
		Organisation: p.Organisation, Emergency: p.Class == crier.ClassEmergency, Exercise: p.Exercise}, p.Target, p.Segment)
	if err != nil {
		return storage.Audience{}, fmt.Errorf("post %d: %w", p.ID, err)
	}
	return storage.CompileAudience(e, why), nil
}
