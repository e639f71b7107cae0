-- Posts in Postgres are the truth; Redis only carries their tasks. A post
-- is accepted once it is stored, whether or not its dispatch task could be
-- queued, so the post records when that first succeeded: the reconciler
-- (dispatcher/reconcile.go) queues the dispatch of the accepted posts that
-- have none, from this partial index, which holds only those.
ALTER TABLE posts ADD COLUMN dispatch_enqueued_at timestamptz;

-- Posts made before: their dispatch was queued when they were accepted (a
-- post whose enqueue failed was refused with a 503, for its publisher to
-- retry).
UPDATE posts SET dispatch_enqueued_at = created_at;

CREATE INDEX posts_dispatch_unqueued_idx ON posts (publish_at)
    WHERE state = 'accepted' AND dispatch_enqueued_at IS NULL;
