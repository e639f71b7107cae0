package crier

import "time"

// Caps per sender (DESIGN.md, "Fairness and caps"): the municipality sets
// each organisation a daily limit on posts and one on pushes per device,
// so that one eager club cannot drown out the others on the residents'
// phones. The municipality's own posts, mandatory feeds and alerts are
// never capped.

// PostWindow is the window a daily post limit counts in: any 24 hours,
// rolling, rather than the tenant's calendar day. A refused publisher then
// learns exactly when its next post may go (when the oldest post that
// fills its allowance leaves the window), there is no burst of held-back
// posts at midnight, and no day is 23 or 25 hours long.
const PostWindow = 24 * time.Hour

// Bounds of the limits the municipality sets: a higher figure is a typing
// error, not a limit (the schema holds the same, migration 0015).
const (
	MaxDailyPosts           = 1000
	MaxDailyPushesPerDevice = 1000
)

// PostCapped reports whether the principal's post to the feed, of the
// class, is held to (and counts toward) the principal's daily post limit:
// an organisation's, unless the feed is mandatory (the municipality's word
// that it must reach everyone) or the post is an alert.
func (p Principal) PostCapped(f Feed, c Class) bool {
	return p.IsOrganisation() && !f.Mandatory && c != ClassEmergency
}

// MaySetLimits answers whether the principal may set the publishers'
// limits: the municipality's to set.
func (p Principal) MaySetLimits() error {
	if p.IsMunicipality() {
		return nil
	}
	return Forbidden("", "only the municipality sets the publishers' limits")
}

// MayReadLimits answers whether the principal may read the limits of the
// publisher: the municipality any of its tenant's, an organisation its own
// (and how much of them it has left).
func (p Principal) MayReadLimits(publisherID int64) error {
	if p.IsMunicipality() || (p.Publisher != nil && p.Publisher.ID == publisherID) {
		return nil
	}
	return Forbidden("", "an organisation reads its own limits only")
}
