// Package redisstore keeps every authcore store port in Redis or Redis
// Cluster, so that many loginhub nodes share one truth. It behaves exactly
// like authcore/memstore (both pass authcore/storetest) and is safe for
// concurrent use by any number of processes.
//
// Every ticket move and every consume-once operation is one Lua script
// that checks and writes atomically; a ticket move also publishes the new
// ticket on the ticket's channel in the same script (PUBLISH, or SPUBLISH
// on a Cluster), so that a watching node need not read it again. The store
// owns that channel's name and its messages' format (TicketChannel,
// TicketID, DecodeTicket). Every script declares the keys it touches (see
// keys.go for the layout). Expiry checks compare against the time the
// caller passes in, never the Redis clock; Redis TTLs only reclaim memory.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/loginhub/loginhub/authcore"
)

// DefaultPrefix starts every key and channel name when Options.Prefix is empty.
const DefaultPrefix = "lh"

// Options tunes a Store.
type Options struct {
	// Prefix starts every key and channel name, so that several
	// deployments can share one Redis; "" means DefaultPrefix. It must not
	// contain '{' or '}', which would change the Cluster hash slots.
	Prefix string
}

// Store implements authcore.Store, and handlers.Limiter (Allow), on Redis.
type Store struct {
	c       redis.UniversalClient
	prefix  string
	cluster bool   // keys of different slots live on different servers
	publish string // PUBLISH, or SPUBLISH on a Cluster
}

var _ authcore.Store = (*Store)(nil)

// New returns a store on c (from Connect, or any go-redis client: a
// *redis.ClusterClient makes the store publish with SPUBLISH, and do in two
// scripts what spans two slots). It panics if opts.Prefix contains a brace.
// The store respects context deadlines as far as c does: Connect's clients
// do (ContextTimeoutEnabled).
func New(c redis.UniversalClient, opts Options) *Store {
	prefix := opts.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if strings.ContainsAny(prefix, "{}") {
		panic(fmt.Sprintf("redisstore: prefix %q contains a brace", prefix))
	}
	s := &Store{c: c, prefix: prefix, publish: "PUBLISH"}
	if _, ok := c.(*redis.ClusterClient); ok {
		s.cluster, s.publish = true, "SPUBLISH"
	}
	return s
}

// Connect returns a client for rawURL, without dialling: redis:// or
// rediss:// for one server (go-redis's URL options), redis+cluster:// or
// rediss+cluster:// for a Cluster, with more seed nodes as addr
// parameters: redis+cluster://host:port?addr=host2:port2&addr=host3:port3.
// The client bounds each command by its context's deadline. Errors show the
// URL with its password redacted.
func Connect(rawURL string) (redis.UniversalClient, error) {
	if rawURL == "" {
		return nil, errors.New("redisstore: empty Redis URL")
	}
	u, err := url.Parse(rawURL)
	if err != nil || u.Opaque != "" {
		return nil, fmt.Errorf("redisstore: malformed Redis URL %s", redactURL(rawURL))
	}
	shown := u.Redacted()
	password, _ := u.User.Password()
	switch u.Scheme {
	case "redis", "rediss":
		opt, err := redis.ParseURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("redisstore: Redis URL %s: %w", shown, scrub(err, password))
		}
		opt.ContextTimeoutEnabled = true
		return redis.NewClient(opt), nil
	case "redis+cluster", "rediss+cluster":
		cu := *u
		cu.Scheme = strings.TrimSuffix(u.Scheme, "+cluster")
		opt, err := redis.ParseClusterURL(cu.String())
		if err != nil {
			return nil, fmt.Errorf("redisstore: Redis URL %s: %w", shown, scrub(err, password))
		}
		opt.ContextTimeoutEnabled = true
		return redis.NewClusterClient(opt), nil
	default:
		return nil, fmt.Errorf("redisstore: Redis URL %s: scheme %q is not redis, rediss, redis+cluster or rediss+cluster", shown, u.Scheme)
	}
}

// redactURL shows a URL that url.Parse refused, or that has no authority,
// without anything that could be a password.
func redactURL(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return "(unparsable, not shown)"
	}
	authority := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority, rest = rest[:i], rest[i:]
	} else {
		rest = ""
	}
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		user, _, _ := strings.Cut(authority[:at], ":")
		authority = user + ":xxxxx" + authority[at:]
	}
	return scheme + "://" + authority + rest
}

// scrub removes a password from an error's text, in case a parser quoted it.
func scrub(err error, password string) error {
	if password == "" {
		return err
	}
	msg := err.Error()
	for _, p := range []string{password, url.PathEscape(password), url.QueryEscape(password)} {
		msg = strings.ReplaceAll(msg, p, "xxxxx")
	}
	if msg == err.Error() {
		return err
	}
	return errors.New(msg)
}

// Ping implements authcore.Store.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redisstore: ping: %w", err)
	}
	return nil
}

// scriptOutcome maps a script's error reply to the authcore error it
// stands for; other errors come back unchanged.
func scriptOutcome(err error) error {
	var re redis.Error
	if !errors.As(err, &re) {
		return err
	}
	code, _, _ := strings.Cut(re.Error(), " ")
	switch code {
	case "LH_NOT_FOUND":
		return authcore.ErrNotFound
	case "LH_CONFLICT":
		return authcore.ErrConflict
	case "LH_NO_SESSION":
		return authcore.ErrNoSession
	case "LH_FORBIDDEN":
		return authcore.ErrForbidden
	}
	return err
}

// isOutcome reports whether err is one of the authcore sentinels, which
// are returned unwrapped, as memstore returns them.
func isOutcome(err error) bool {
	return err == authcore.ErrNotFound || err == authcore.ErrConflict || err == authcore.ErrNoSession || err == authcore.ErrForbidden
}

// outcome returns err as it is when it is an authcore sentinel (after
// scriptOutcome), and otherwise wrapped with what: the one way every
// method reports a script's error.
func outcome(err error, what string) error {
	if err = scriptOutcome(err); err == nil || isOutcome(err) {
		return err
	}
	return fmt.Errorf("redisstore: %s: %w", what, err)
}
