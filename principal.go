package crier

// KeyKind is the kind of an API key: an app key registers devices, a
// publisher key publishes.
type KeyKind string

// The key kinds.
const (
	KeyApp       KeyKind = "app"
	KeyPublisher KeyKind = "publisher"
)

// Principal is who a request speaks for: the app (an app key), or a
// publisher (the municipality or an organisation). The authorisation
// questions are asked of it here, once, whoever asks them: the API, the
// console, the command line.
type Principal struct {
	KeyID    int64
	TenantID int64
	Kind     KeyKind
	// Publisher is set for publisher keys.
	Publisher *Publisher
}

// IsMunicipality reports whether the principal is the tenant's
// municipality.
func (p Principal) IsMunicipality() bool {
	return p.Publisher != nil && p.Publisher.Role == RoleMunicipality
}

// IsOrganisation reports whether the principal is an organisation.
func (p Principal) IsOrganisation() bool {
	return p.Publisher != nil && p.Publisher.Role != RoleMunicipality
}

// PublisherID is the principal's publisher, 0 for none.
func (p Principal) PublisherID() int64 {
	if p.Publisher == nil {
		return 0
	}
	return p.Publisher.ID
}

// MayPublishTo answers whether the principal may post to the feed: the
// municipality to any of its tenant's, an organisation to its own.
func (p Principal) MayPublishTo(f Feed) error {
	switch {
	case p.Publisher == nil:
		return Forbidden("feed", "only publishers post")
	case f.TenantID != 0 && f.TenantID != p.TenantID:
		return Invalid("feed", "unknown feed %q", f.Slug)
	case p.IsMunicipality(), f.PublisherID == p.Publisher.ID:
		return nil
	}
	return Forbidden("feed", "feed %q belongs to another publisher", f.Slug)
}

// MaySend answers whether the principal may send posts of the class:
// official news and emergencies are the municipality's.
func (p Principal) MaySend(c Class) error {
	if c == ClassCommunity || p.IsMunicipality() {
		return nil
	}
	return Forbidden("class", "only the municipality may send %s posts", c)
}

// DefaultClass is the class of a post that names none.
func (p Principal) DefaultClass() Class {
	if p.IsMunicipality() {
		return ClassOfficial
	}
	return ClassCommunity
}

// MaySee answers whether the principal may see a post of the publisher:
// the municipality sees its tenant's posts, an organisation its own. To an
// organisation the others' posts do not exist.
func (p Principal) MaySee(postPublisherID int64) bool {
	return p.IsMunicipality() || (p.Publisher != nil && p.Publisher.ID == postPublisherID)
}

// MayUseSegmentNode answers whether the principal may use a segment node of
// the kind ("all", "device", ...): organisations may not send to everyone
// nor to single devices.
func (p Principal) MayUseSegmentNode(kind string) error {
	if p.IsMunicipality() {
		return nil
	}
	switch kind {
	case "all":
		return Forbidden("", "organisations may not send to all devices")
	case "device":
		return Forbidden("", "organisations may not send to single devices")
	}
	return nil
}

// MaySendAlerts answers whether the principal may send emergency alerts.
func (p Principal) MaySendAlerts() error {
	if p.IsMunicipality() {
		return nil
	}
	return Forbidden("", "only the municipality sends alerts")
}

// MayManageAreas answers whether the principal may import the tenant's
// areas.
func (p Principal) MayManageAreas() error {
	if p.IsMunicipality() {
		return nil
	}
	return Forbidden("", "only the municipality may import areas")
}

// SeesExactCounts reports whether the principal sees audience counts as
// they are; organisations see them rounded, so no club can probe who lives
// where.
func (p Principal) SeesExactCounts() bool { return p.IsMunicipality() }

// MayManageKeys answers whether the principal may list, make and revoke
// the tenant's API keys: the municipality's to hold, for itself, its
// organisations and the app.
func (p Principal) MayManageKeys() error {
	if p.IsMunicipality() {
		return nil
	}
	return Forbidden("", "only the municipality manages keys")
}

// MayRevokeKey answers whether the principal may revoke the key. Not the
// key it speaks with: a key revoking itself would lock its system out by
// one mistaken call; rotating is make a new key, switch to it, and revoke
// the old one with the new.
func (p Principal) MayRevokeKey(keyID int64) error {
	if err := p.MayManageKeys(); err != nil {
		return err
	}
	if keyID == p.KeyID {
		return Errorf(ECONFLICT, "id", "this is the key the request came with: revoke it with another key")
	}
	return nil
}

// MayReadAudit answers whether the principal may read the tenant's audit
// log.
func (p Principal) MayReadAudit() error {
	if p.IsMunicipality() {
		return nil
	}
	return Forbidden("", "only the municipality reads the audit log")
}

// MayManageInterests answers whether the principal may change the tenant's
// catalogue of interests and grant them to organisations.
func (p Principal) MayManageInterests() error {
	if p.IsMunicipality() {
		return nil
	}
	return Forbidden("", "only the municipality manages the catalogue of interests")
}

// GeographyFloor is the finest geography the principal may target: the
// smallest near radius in metres and the smallest polygon (or hole) area
// in square metres, zero for no floor. Organisations target no finer than
// 500 m and 0.5 km², so that no club can single out a few houses; the
// municipality has no floor.
func (p Principal) GeographyFloor() (minRadiusM, minAreaM2 float64) {
	if p.IsOrganisation() {
		return 500, 500_000
	}
	return 0, 0
}
