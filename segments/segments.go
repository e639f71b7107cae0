// Package segments decides who a post is for. It compiles a post's audience
// into a SQL condition over the devices table (alias d) that adds only
// placeholders, never values, to the SQL text; the dispatcher's snapshot
// runs it.
//
// This first version knows the default audience rule of DESIGN.md without
// geography: followers of the feed ∪ devices interested in one of the post's
// tags ∪ every device of the tenant if the feed is mandatory. The expression
// grammar, geographic targets and the reference evaluator come next.
package segments

import "fmt"

// Condition is a compiled audience: SQL over devices d with placeholders
// numbered from the base the compiler was given, and their values.
type Condition struct {
	SQL  string
	Args []any
}

// Post is what the default rule needs to know of a post.
type Post struct {
	FeedID        int64
	FeedMandatory bool
	Tags          []string
}

// Default compiles the default audience rule. Placeholders start at
// $argBase+1.
func Default(p Post, argBase int) Condition {
	if p.FeedMandatory {
		return Condition{SQL: "true"}
	}
	c := Condition{
		SQL:  fmt.Sprintf("d.follows @> ARRAY[$%d::bigint]", argBase+1),
		Args: []any{p.FeedID},
	}
	if len(p.Tags) > 0 {
		c.SQL = fmt.Sprintf("(%s OR d.interests && $%d::text[])", c.SQL, argBase+2)
		c.Args = append(c.Args, p.Tags)
	}
	return c
}

// Matches is the same rule evaluated in Go over one device's choices; tests
// hold the SQL and this against each other.
func Matches(p Post, follows []int64, interests []string) bool {
	if p.FeedMandatory {
		return true
	}
	for _, f := range follows {
		if f == p.FeedID {
			return true
		}
	}
	for _, i := range interests {
		for _, t := range p.Tags {
			if i == t {
				return true
			}
		}
	}
	return false
}
