package worker

import (
	"context"
	"sync"
	"time"

	"github.com/crier-push/crier/storage"
)

// postCache keeps each post a worker sends for a short while, so a million
// sends of one post read it from Postgres about once a TTL, and a
// cancellation is still seen within the TTL.
type postCache struct {
	db  *storage.DB
	ttl time.Duration
	now func() time.Time

	mu    sync.Mutex
	posts map[int64]cachedPost
}

type cachedPost struct {
	post   storage.Post
	loaded time.Time
}

func newPostCache(db *storage.DB, ttl time.Duration, now func() time.Time) *postCache {
	return &postCache{db: db, ttl: ttl, now: now, posts: map[int64]cachedPost{}}
}

func (c *postCache) get(ctx context.Context, id int64) (storage.Post, error) {
	now := c.now()
	c.mu.Lock()
	cp, ok := c.posts[id]
	c.mu.Unlock()
	if ok && now.Sub(cp.loaded) < c.ttl {
		return cp.post, nil
	}
	p, err := c.db.PostByID(ctx, id)
	if err != nil {
		return storage.Post{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.posts[id] = cachedPost{post: p, loaded: now}
	if len(c.posts) > 1024 {
		for k, v := range c.posts {
			if now.Sub(v.loaded) >= c.ttl {
				delete(c.posts, k)
			}
		}
	}
	return p, nil
}
