// Package redisstore keeps every authcore store port in Redis or Redis
// Cluster, so that many loginhub nodes share one truth. It behaves exactly
// like authcore/memstore (both pass authcore/storetest) and is safe for
// concurrent use by any number of processes.
//
// Every ticket transition and every consume-once operation is one Lua
// script that checks and writes atomically; a ticket transition also
// publishes the ticket it wrote on the ticket's channel (TicketChannel) in
// the same script, so that a watching node need not read it again:
// PUBLISH on a standalone server, SPUBLISH (sharded pub/sub, Redis 7) on a
// Cluster. The store never reads the Redis clock for a
// decision: expiry checks compare against the time the caller passes in;
// Redis TTLs only reclaim memory.
//
// # Key layout
//
// With the default prefix "lh" (hex is lower-case hex of a SHA-256):
//
//	lh:{t:<ticket id>}               ticket (string, see EncodeTicket); TTL: expiry + retention
//	lh:{t:<ticket id>}:v             the ticket's channel (messages: see DecodeTicketMessage)
//	lh:{f:<family>}:a:<hex access>   session record (hash, see sessionFields); TTL: refresh expiry
//	lh:{f:<family>}:r:<hex refresh>  → hex access hash; TTL: refresh expiry
//	lh:{f:<family>}:used:<hex refr.> consumed refresh token (→ its expiry, unix ms); TTL: that expiry
//	lh:{f:<family>}:m                set of the family's hex access hashes; TTL: latest refresh expiry
//	lh:{u:<user id>}                 user (hash n, a, c); no TTL
//	lh:{u:<user id>}:ids             names of the identity and unionid keys linked to the user (set; may
//	                                 hold stale names, which erasure skips); no TTL
//	lh:{u:<user id>}:pd              personal data (hash: field → value sealed by the Vault); no TTL
//	lh:{u:<user id>}:audit           audit trail (list of JSON authcore.AuditEntry, oldest first, the last
//	                                 1000); no TTL: compliance records, kept after the user's erasure
//	lh:{i:<provider>:<subject>}      identity → user id; no TTL
//	lh:{un:<unionid>}                unionid → user id; no TTL
//	lh:{k:<openid>}                  WeChat session_key (a secret: never logged); no TTL, one per openid
//	lh:{fv:<verify id>}              face verification in progress (JSON, see faceRecord); TTL: its expiry
//	lh:once:<key>                    replay cache entry; TTL: its ttl
//	lh:rate:<key>                    rate-limit window counter; TTL: the window
//	lh:{at:<appid>}                  WeChat access_token ("<expiry unix ms> <token>"; a secret); TTL: its expiry
//	lh:{lock:<name>}                 a TryLock lease (→ the holder's random token); TTL: the lease
//
// The braces are Redis Cluster hash tags: a ticket and its channel share
// one slot, all sessions of one login family share one, and so do a user
// and its link set, personal data and audit trail, which lets one script
// touch them together on a Cluster. A user's identities, unionids and
// session keys live in other slots: EraseUser unlinks them one by one
// (compare and delete) before it deletes the user-slot keys in one script.
//
// Times are kept to the millisecond and come back in UTC.
package redisstore

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

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
	// VersionMessages makes transitions publish only the new version
	// ("<version>"), as releases before ticket messages did, instead of the
	// new ticket. Nodes of those releases ignore ticket messages: during a
	// rolling upgrade from one, set it on the new nodes until no old node
	// is left, or the old nodes miss changes. Every release reads both.
	VersionMessages bool
}

// Store implements authcore.Store, and handlers.Limiter (Allow), on Redis.
type Store struct {
	c       redis.UniversalClient
	prefix  string
	cluster bool   // keys of different slots live on different servers
	publish string // PUBLISH, or SPUBLISH on a Cluster
	message string // what transition.lua publishes: "t" the ticket, "v" its version
}

var (
	_ authcore.Store          = (*Store)(nil)
	_ authcore.PrincipalStore = (*Store)(nil)
	_ authcore.RedeemStore    = (*Store)(nil)
)

// New returns a store on c (from Connect, or any go-redis client: a
// *redis.ClusterClient makes the store publish with SPUBLISH). It panics if
// opts.Prefix contains a brace. The store respects context deadlines as far
// as c does: Connect's clients do (ContextTimeoutEnabled).
func New(c redis.UniversalClient, opts Options) *Store {
	prefix := opts.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if strings.ContainsAny(prefix, "{}") {
		panic(fmt.Sprintf("redisstore: prefix %q contains a brace", prefix))
	}
	s := &Store{c: c, prefix: prefix, publish: "PUBLISH", message: "t"}
	if opts.VersionMessages {
		s.message = "v"
	}
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

// TicketChannel is the channel on which ticket id's transitions are
// published (see DecodeTicketMessage): <prefix>:{t:<id>}:v. A prefix of ""
// means DefaultPrefix, as in Options. On a Cluster it is a sharded channel
// (SSUBSCRIBE), in the slot of the ticket's key.
func TicketChannel(prefix, id string) string {
	return ticketKey(prefix, id) + ":v"
}

// TicketIDFromChannel returns the ticket id of a channel named by
// TicketChannel with the same prefix.
func TicketIDFromChannel(prefix, channel string) (string, bool) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	rest, ok := strings.CutPrefix(channel, prefix+":{t:")
	if !ok {
		return "", false
	}
	id, ok := strings.CutSuffix(rest, "}:v")
	if !ok || id == "" {
		return "", false
	}
	return id, true
}

func ticketKey(prefix, id string) string {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return prefix + ":{t:" + id + "}"
}

// familyBase starts every key of a login family's sessions.
func (s *Store) familyBase(family string) string { return s.prefix + ":{f:" + family + "}:" }

func (s *Store) userKey(id string) string { return s.userKeyPrefix() + id + "}" }

// userKeyPrefix is a user key up to the user's id.
func (s *Store) userKeyPrefix() string { return s.prefix + ":{u:" }

// userLinksKey is the set of identity and unionid key names linked to user id.
func (s *Store) userLinksKey(id string) string { return s.userKey(id) + ":ids" }

func (s *Store) personalDataKey(id string) string { return s.userKey(id) + ":pd" }

func (s *Store) auditKey(id string) string { return s.userKey(id) + ":audit" }

func (s *Store) faceKey(verifyID string) string { return s.prefix + ":{fv:" + verifyID + "}" }

func (s *Store) identityKey(id authcore.Identity) string {
	return s.prefix + ":{i:" + id.Provider + ":" + id.Subject + "}"
}

func (s *Store) unionKey(unionID string) string { return s.prefix + ":{un:" + unionID + "}" }

func (s *Store) sessionKeyKey(openid string) string { return s.prefix + ":{k:" + openid + "}" }

// The scripts. go-redis runs them with EVALSHA, falling back to EVAL when
// a server does not have them cached yet.
var (
	//go:embed lua/transition.lua
	transitionLua string
	//go:embed lua/session_put.lua
	sessionPutLua string
	//go:embed lua/create_session.lua
	createSessionLua string
	//go:embed lua/session_by_access.lua
	sessionByAccessLua string
	//go:embed lua/rotate_refresh.lua
	rotateRefreshLua string
	//go:embed lua/delete_session.lua
	deleteSessionLua string
	//go:embed lua/update_user.lua
	updateUserLua string
	//go:embed lua/allow.lua
	allowLua string
	//go:embed lua/unlock.lua
	unlockLua string
	//go:embed lua/unlink.lua
	unlinkLua string
	//go:embed lua/erase_user.lua
	eraseUserLua string
	//go:embed lua/put_personal_data.lua
	putPersonalDataLua string
	//go:embed lua/mark_face.lua
	markFaceLua string
	//go:embed lua/principal_by_access.lua
	principalByAccessLua string
	//go:embed lua/redeem.lua
	redeemLua string
	//go:embed lua/phone_move.lua
	phoneMoveLua string
	//go:embed lua/redeem_if_allowed.lua
	redeemIfAllowedLua string

	transitionScript      = redis.NewScript(transitionLua + "return transition(KEYS, ARGV)\n")
	createSessionScript   = redis.NewScript(sessionPutLua + createSessionLua)
	redeemScript          = redis.NewScript(sessionPutLua + transitionLua + redeemLua)
	redeemIfAllowedScript = redis.NewScript(sessionPutLua + transitionLua + redeemIfAllowedLua)
	sessionByAccessScript = redis.NewScript(sessionByAccessLua + `local rec = session_by_access(KEYS[1], ARGV[1], ARGV[2])
if not rec then
  return redis.error_reply('LH_NOT_FOUND session')
end
return rec
`)
	rotateRefreshScript     = redis.NewScript(sessionPutLua + rotateRefreshLua)
	deleteSessionScript     = redis.NewScript(deleteSessionLua)
	updateUserScript        = redis.NewScript(updateUserLua)
	allowScript             = redis.NewScript(allowLua)
	unlockScript            = redis.NewScript(unlockLua)
	unlinkScript            = redis.NewScript(unlinkLua)
	eraseUserScript         = redis.NewScript(eraseUserLua)
	putPersonalDataScript   = redis.NewScript(putPersonalDataLua)
	markFaceScript          = redis.NewScript(markFaceLua)
	principalByAccessScript = redis.NewScript(sessionByAccessLua + principalByAccessLua + `local rec, user = principal_by_access(KEYS[1], ARGV[1], ARGV[2], ARGV[3])
if not rec then
  return redis.error_reply('LH_NOT_FOUND session')
elseif rec.err then
  return rec
end
return {rec, user}
`)
	phoneMoveScript = redis.NewScript(sessionByAccessLua + principalByAccessLua + transitionLua + phoneMoveLua)
)

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
	}
	return err
}

// isOutcome reports whether err is one of the authcore sentinels, which
// are returned unwrapped, as memstore returns them.
func isOutcome(err error) bool {
	return err == authcore.ErrNotFound || err == authcore.ErrConflict || err == authcore.ErrNoSession
}

// Ping implements authcore.Store.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redisstore: ping: %w", err)
	}
	return nil
}

// ---- tickets ----

// State codes: a ticket stores each state as one letter.
var (
	stateCodes = map[authcore.State]string{
		authcore.StatePending: "p", authcore.StateScanned: "s", authcore.StateConfirmed: "c",
		authcore.StateRedeemed: "r", authcore.StateCancelled: "x", authcore.StateExpired: "e",
	}
	codeStates    = invertCodes(stateCodes)
	terminalCodes = terminalCodesOf(stateCodes) // passed to transition.lua, so Terminal stays the one definition
)

func invertCodes(m map[authcore.State]string) map[byte]authcore.State {
	out := make(map[byte]authcore.State, len(m))
	for st, code := range m {
		out[code[0]] = st
	}
	return out
}

func terminalCodesOf(m map[authcore.State]string) string {
	var codes []string
	for st, code := range m {
		if st.Terminal() {
			codes = append(codes, code)
		}
	}
	slices.Sort(codes) // deterministic
	return strings.Join(codes, "")
}

// A ticket is one string: fields in a fixed order, each as
// "<byte length>:<bytes>". It is smaller than a hash (whose values over 64
// bytes, like a User-Agent, would turn it into a hash table of ~900 bytes)
// and than JSON, and transition.lua rewrites only its head. A transition
// publishes it whole, as written (watch secret hash included: whoever can
// subscribe to the channel can read the key as well).
const ticketFormat = "1"

// Positions of the ticket fields. The head (up to tScannerAvatar) is what
// transition.lua reads and writes; keep both in step.
const (
	tFormat = iota
	tVersion
	tState     // state code
	tTrail     // state codes, in version order
	tExpires   // unix ms
	tScannerID //
	tScannerNick
	tScannerAvatar
	tCreated     // unix ms
	tWatchSecret // SHA-256, 32 raw bytes
	tDPoPJKT
	tClientIP // netip.Addr.MarshalBinary
	tReqIP
	tReqLocation
	tReqDevice
	tReqUserAgent
	tReqCreated // unix ms
	tFields
)

// EncodeTicket returns r in the format of a ticket key's value, which is
// also the message a transition publishes.
func EncodeTicket(r authcore.TicketRecord) (string, error) {
	var f [tFields]string
	f[tFormat] = ticketFormat
	f[tVersion] = strconv.FormatUint(r.Version, 10)
	var ok bool
	if f[tState], ok = stateCodes[r.State]; !ok && r.State != "" {
		return "", fmt.Errorf("unknown state %q", r.State)
	}
	var trail strings.Builder
	for _, st := range r.Trail {
		code, ok := stateCodes[st]
		if !ok {
			return "", fmt.Errorf("unknown state %q in trail", st)
		}
		trail.WriteString(code)
	}
	f[tTrail] = trail.String()
	f[tExpires] = encodeTime(r.ExpiresAt)
	f[tScannerID], f[tScannerNick], f[tScannerAvatar] = r.ScannerID, r.Scanner.Nickname, r.Scanner.AvatarURL
	f[tCreated] = encodeTime(r.CreatedAt)
	if r.WatchSecretHash != ([32]byte{}) {
		f[tWatchSecret] = string(r.WatchSecretHash[:])
	}
	f[tDPoPJKT] = r.DPoPJKT
	ip, _ := r.ClientIP.MarshalBinary()
	f[tClientIP] = string(ip)
	q := r.Requester
	f[tReqIP], f[tReqLocation], f[tReqDevice], f[tReqUserAgent] = q.IP, q.Location, q.Device, q.UserAgent
	f[tReqCreated] = encodeTime(q.CreatedAt)

	var b strings.Builder
	for _, v := range f {
		b.WriteString(strconv.Itoa(len(v)))
		b.WriteByte(':')
		b.WriteString(v)
	}
	return b.String(), nil
}

// DecodeTicketMessage reads a message published on ticket id's channel:
// the ticket the transition wrote (in the format of EncodeTicket), or only
// its new version in decimal ASCII (releases before ticket messages, and
// stores with Options.VersionMessages). full says which: without it, rec
// holds only the id and the version. The two cannot be confused: an
// encoded ticket starts with its format's length and a colon.
func DecodeTicketMessage(id, payload string) (rec authcore.TicketRecord, full bool, err error) {
	if v, err := strconv.ParseUint(payload, 10, 64); err == nil {
		return authcore.TicketRecord{ID: id, Version: v}, false, nil
	}
	rec, err = decodeTicket(id, payload)
	if err != nil {
		return authcore.TicketRecord{}, false, fmt.Errorf("redisstore: message on ticket %s's channel: %w", id, err)
	}
	return rec, true, nil
}

func decodeTicket(id, raw string) (authcore.TicketRecord, error) {
	var f [tFields]string
	for i := range f {
		n, rest, ok := strings.Cut(raw, ":")
		size, err := strconv.Atoi(n)
		if !ok || err != nil || size < 0 || size > len(rest) {
			return authcore.TicketRecord{}, fmt.Errorf("corrupt ticket (field %d)", i)
		}
		f[i], raw = rest[:size], rest[size:]
	}
	if raw != "" || f[tFormat] != ticketFormat {
		return authcore.TicketRecord{}, errors.New("corrupt ticket (format)")
	}
	r := authcore.TicketRecord{ID: id, DPoPJKT: f[tDPoPJKT], ScannerID: f[tScannerID],
		Scanner:   authcore.Profile{Nickname: f[tScannerNick], AvatarURL: f[tScannerAvatar]},
		Requester: authcore.Requester{IP: f[tReqIP], Location: f[tReqLocation], Device: f[tReqDevice], UserAgent: f[tReqUserAgent]},
	}
	var err error
	if r.Version, err = strconv.ParseUint(f[tVersion], 10, 64); err != nil {
		return authcore.TicketRecord{}, errors.New("corrupt ticket (version)")
	}
	if f[tState] != "" {
		if r.State = codeStates[f[tState][0]]; r.State == "" || len(f[tState]) != 1 {
			return authcore.TicketRecord{}, errors.New("corrupt ticket (state)")
		}
	}
	if trail := f[tTrail]; trail != "" {
		r.Trail = make([]authcore.State, len(trail))
		for i := range len(trail) {
			if r.Trail[i] = codeStates[trail[i]]; r.Trail[i] == "" {
				return authcore.TicketRecord{}, errors.New("corrupt ticket (trail)")
			}
		}
	}
	for _, t := range []struct {
		dst *time.Time
		src string
	}{{&r.ExpiresAt, f[tExpires]}, {&r.CreatedAt, f[tCreated]}, {&r.Requester.CreatedAt, f[tReqCreated]}} {
		if *t.dst, err = decodeTime(t.src); err != nil {
			return authcore.TicketRecord{}, errors.New("corrupt ticket (time)")
		}
	}
	switch len(f[tWatchSecret]) {
	case 0:
	case len(r.WatchSecretHash):
		copy(r.WatchSecretHash[:], f[tWatchSecret])
	default:
		return authcore.TicketRecord{}, errors.New("corrupt ticket (watch secret hash)")
	}
	if err := r.ClientIP.UnmarshalBinary([]byte(f[tClientIP])); err != nil {
		return authcore.TicketRecord{}, errors.New("corrupt ticket (client ip)")
	}
	return r, nil
}

// encodeTime is unix milliseconds, or "" for the zero time.
func encodeTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.UnixMilli(), 10)
}

func decodeTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	return time.UnixMilli(ms).UTC(), nil
}

// CreateTicket implements authcore.TicketStore: one SET NX PXAT, so the
// ticket key expires at rec.ExpiresAt + retention.
func (s *Store) CreateTicket(ctx context.Context, rec authcore.TicketRecord, retention time.Duration) error {
	val, err := EncodeTicket(rec)
	if err != nil {
		return fmt.Errorf("redisstore: create ticket %s: %w", rec.ID, err)
	}
	deleteAt := rec.ExpiresAt.Add(retention).UnixMilli()
	if deleteAt <= 0 {
		return fmt.Errorf("redisstore: create ticket %s: no expiry", rec.ID)
	}
	err = s.c.Do(ctx, "SET", ticketKey(s.prefix, rec.ID), val, "NX", "PXAT", deleteAt).Err()
	switch {
	case errors.Is(err, redis.Nil):
		return authcore.ErrConflict
	case err != nil:
		return fmt.Errorf("redisstore: create ticket %s: %w", rec.ID, err)
	}
	return nil
}

// Ticket implements authcore.TicketStore.
func (s *Store) Ticket(ctx context.Context, id string) (authcore.TicketRecord, error) {
	raw, err := s.c.Get(ctx, ticketKey(s.prefix, id)).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return authcore.TicketRecord{}, authcore.ErrNotFound
	case err != nil:
		return authcore.TicketRecord{}, fmt.Errorf("redisstore: ticket %s: %w", id, err)
	}
	rec, err := decodeTicket(id, raw)
	if err != nil {
		return authcore.TicketRecord{}, fmt.Errorf("redisstore: ticket %s: %w", id, err)
	}
	return rec, nil
}

// Transition implements authcore.TicketStore with transition.lua, which
// also publishes the new ticket on TicketChannel(prefix, t.ID).
func (s *Store) Transition(ctx context.Context, t authcore.Transition) (authcore.TicketRecord, error) {
	rec, status, err := s.transition(ctx, t.ID, strconv.FormatUint(t.FromVersion, 10), "", "", t.To, t.ScannerID, t.Scanner, t.Now)
	switch {
	case err != nil:
		return authcore.TicketRecord{}, err
	case status == "conflict":
		return authcore.TicketRecord{}, authcore.ErrConflict
	case status == "expired":
		return authcore.TicketRecord{}, authcore.ErrExpired
	}
	return rec, nil
}

// TransitionFrom implements authcore.TicketStore with the same script as
// Transition, which replies the ticket as stored when it refuses.
func (s *Store) TransitionFrom(ctx context.Context, t authcore.StateTransition) (authcore.TicketRecord, bool, error) {
	from, ok := stateCodes[t.From]
	if !ok {
		return authcore.TicketRecord{}, false, fmt.Errorf("redisstore: transition %s: unknown state %q", t.ID, t.From)
	}
	rec, status, err := s.transition(ctx, t.ID, "", from, t.Owner, t.To, t.ScannerID, t.Scanner, t.Now)
	if err != nil {
		return authcore.TicketRecord{}, false, err
	}
	return rec, status == "ok", nil
}

// transition runs transition.lua: with a version (decimal) the compare-and-
// set of Transition, with "" the state and owner check of TransitionFrom.
// It returns the script's status ("ok", "conflict" or "expired") and the
// ticket it replied: the new one, or the one it left as it was.
func (s *Store) transition(ctx context.Context, id, version, from, owner string, to authcore.State, scannerID string, scanner authcore.Profile, now time.Time) (authcore.TicketRecord, string, error) {
	keys, args, err := s.transitionArgs(id, version, from, owner, to, scannerID, scanner, now)
	if err != nil {
		return authcore.TicketRecord{}, "", fmt.Errorf("redisstore: transition %s: %w", id, err)
	}
	reply, err := transitionScript.Run(ctx, s.c, keys, args...).StringSlice()
	if err = scriptOutcome(err); isOutcome(err) {
		return authcore.TicketRecord{}, "", err
	} else if err != nil {
		return authcore.TicketRecord{}, "", fmt.Errorf("redisstore: transition %s: %w", id, err)
	}
	if len(reply) != 2 {
		return authcore.TicketRecord{}, "", fmt.Errorf("redisstore: transition %s: unexpected reply of %d values", id, len(reply))
	}
	rec, err := decodeTicket(id, reply[1])
	if err != nil {
		return authcore.TicketRecord{}, "", fmt.Errorf("redisstore: transition %s: %w", id, err)
	}
	return rec, reply[0], nil
}

// transitionArgs returns the keys and the arguments of transition.lua.
func (s *Store) transitionArgs(id, version, from, owner string, to authcore.State, scannerID string, scanner authcore.Profile, now time.Time) ([]string, []any, error) {
	toCode, ok := stateCodes[to]
	if !ok {
		return nil, nil, fmt.Errorf("unknown state %q", to)
	}
	writeScanner := "0"
	if to == authcore.StateScanned {
		writeScanner = "1"
	}
	key := ticketKey(s.prefix, id)
	return []string{key, key + ":v"}, []any{version, now.UnixMilli(), toCode, terminalCodes, s.publish,
		writeScanner, scannerID, scanner.Nickname, scanner.AvatarURL, from, owner, s.message}, nil
}

// RedeemTicket implements authcore.RedeemStore: on one Redis server,
// redeem.lua moves the ticket and creates the session in one round trip;
// on a Cluster it returns errors.ErrUnsupported and the core calls User,
// CreateSession and Transition.
func (s *Store) RedeemTicket(ctx context.Context, t authcore.Transition, rec authcore.SessionRecord) (authcore.TicketRecord, authcore.User, error) {
	if s.cluster {
		return authcore.TicketRecord{}, authcore.User{}, errors.ErrUnsupported
	}
	tkeys, targs, err := s.transitionArgs(t.ID, strconv.FormatUint(t.FromVersion, 10), "", "", t.To, t.ScannerID, t.Scanner, t.Now)
	if err != nil {
		return authcore.TicketRecord{}, authcore.User{}, fmt.Errorf("redisstore: redeem %s: %w", t.ID, err)
	}
	skeys, sargs, err := s.sessionPut(rec)
	if err != nil {
		return authcore.TicketRecord{}, authcore.User{}, fmt.Errorf("redisstore: redeem %s: session: %w", t.ID, err)
	}
	args := append(append(targs, s.userKey(rec.UserID)), sargs...)
	reply, err := redeemScript.Run(ctx, s.c, append(tkeys, skeys...), args...).Slice()
	if err = scriptOutcome(err); isOutcome(err) {
		return authcore.TicketRecord{}, authcore.User{}, err
	} else if err != nil {
		return authcore.TicketRecord{}, authcore.User{}, fmt.Errorf("redisstore: redeem %s: %w", t.ID, err)
	}
	status, tk, u, err := redeemReply(t.ID, rec.UserID, reply)
	switch {
	case err != nil:
		return authcore.TicketRecord{}, authcore.User{}, fmt.Errorf("redisstore: redeem %s: %w", t.ID, err)
	case status == "conflict":
		return authcore.TicketRecord{}, authcore.User{}, authcore.ErrConflict
	case status == "expired":
		return authcore.TicketRecord{}, authcore.User{}, authcore.ErrExpired
	case status != "ok":
		return authcore.TicketRecord{}, authcore.User{}, fmt.Errorf("redisstore: redeem %s: unexpected reply %v", t.ID, reply)
	}
	return tk, u, nil
}

// redeemReply decodes what redeem.lua and redeem_if_allowed.lua reply:
// {status, ticket} or, with "ok", {status, ticket, user field/value pairs}
// of user userID ("" for the ticket's scanner).
func redeemReply(id, userID string, reply []any) (string, authcore.TicketRecord, authcore.User, error) {
	if len(reply) < 2 {
		return "", authcore.TicketRecord{}, authcore.User{}, fmt.Errorf("unexpected reply %v", reply)
	}
	status, _ := reply[0].(string)
	raw, _ := reply[1].(string)
	tk, err := decodeTicket(id, raw)
	if err != nil {
		return "", authcore.TicketRecord{}, authcore.User{}, err
	}
	switch {
	case status != "ok" && len(reply) == 2:
		return status, tk, authcore.User{}, nil
	case status != "ok" || len(reply) != 3:
		return "", authcore.TicketRecord{}, authcore.User{}, fmt.Errorf("unexpected reply of %d values, status %q", len(reply), status)
	}
	if userID == "" {
		userID = tk.ScannerID
	}
	m, err := pairs(reply[2])
	if err != nil {
		return "", authcore.TicketRecord{}, authcore.User{}, fmt.Errorf("user: %w", err)
	}
	u, err := decodeUser(userID, m)
	if err != nil {
		return "", authcore.TicketRecord{}, authcore.User{}, fmt.Errorf("user %s: %w", userID, err)
	}
	return status, tk, u, nil
}

// ---- sessions ----

// sessionFields is the record as the field/value pairs of its hash: every
// field, even empty, so that writing them replaces a whole record. The
// family and the access hash are in the key; "rh" (hex) finds the refresh
// key; "fa" is FaceAt (unix ms), set by mark_face.lua. withIdentity false
// leaves out the fields RotateRefresh copies from the old record (u, amr,
// fa, p, s, un).
func sessionFields(r authcore.SessionRecord, withIdentity bool) ([]any, error) {
	f := []any{
		"i", r.ID,
		"ae", encodeTime(r.AccessExpiresAt),
		"re", encodeTime(r.RefreshExpiresAt),
		"c", encodeTime(r.CreatedAt),
		"rh", hex.EncodeToString(r.RefreshHash[:]),
	}
	if withIdentity {
		amr := ""
		if len(r.AMR) > 0 {
			b, err := json.Marshal(r.AMR)
			if err != nil {
				return nil, err
			}
			amr = string(b)
		}
		f = append(f, "u", r.UserID, "amr", amr, "fa", encodeTime(r.FaceAt), "p", r.Provider, "s", r.Subject, "un", r.UnionID)
	}
	return f, nil
}

// decodeSession reads a record from a script's field/value pairs.
func decodeSession(family string, access [32]byte, reply any) (authcore.SessionRecord, error) {
	m, err := pairs(reply)
	if err != nil {
		return authcore.SessionRecord{}, err
	}
	r := authcore.SessionRecord{ID: m["i"], FamilyID: family, UserID: m["u"], AccessHash: access,
		Provider: m["p"], Subject: m["s"], UnionID: m["un"]}
	if b, err := hex.DecodeString(m["rh"]); err != nil || len(b) != len(r.RefreshHash) {
		return authcore.SessionRecord{}, errors.New("corrupt session (refresh hash)")
	} else {
		copy(r.RefreshHash[:], b)
	}
	for _, t := range []struct {
		dst *time.Time
		src string
	}{{&r.AccessExpiresAt, m["ae"]}, {&r.RefreshExpiresAt, m["re"]}, {&r.CreatedAt, m["c"]}, {&r.FaceAt, m["fa"]}} {
		if *t.dst, err = decodeTime(t.src); err != nil {
			return authcore.SessionRecord{}, errors.New("corrupt session (time)")
		}
	}
	if amr := m["amr"]; amr != "" {
		if err := json.Unmarshal([]byte(amr), &r.AMR); err != nil {
			return authcore.SessionRecord{}, errors.New("corrupt session (amr)")
		}
	}
	return r, nil
}

// pairs turns a flat array of field/value pairs into a map.
func pairs(reply any) (map[string]string, error) {
	a, ok := reply.([]any)
	if !ok || len(a)%2 != 0 {
		return nil, fmt.Errorf("unexpected reply %T", reply)
	}
	m := make(map[string]string, len(a)/2)
	for i := 0; i < len(a); i += 2 {
		k, ok1 := a[i].(string)
		v, ok2 := a[i+1].(string)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("unexpected reply element %T", a[i+1])
		}
		m[k] = v
	}
	return m, nil
}

type sessionKeys struct {
	base, access, refresh, members string
	accessHex                      string
}

func (s *Store) sessionKeys(family string, access, refresh [32]byte) sessionKeys {
	base := s.familyBase(family)
	ah := hex.EncodeToString(access[:])
	return sessionKeys{base: base, access: base + "a:" + ah, refresh: base + "r:" + hex.EncodeToString(refresh[:]),
		members: base + "m", accessHex: ah}
}

// CreateSession implements authcore.SessionStore. Its keys expire at
// rec.RefreshExpiresAt.
func (s *Store) CreateSession(ctx context.Context, rec authcore.SessionRecord) error {
	keys, args, err := s.sessionPut(rec)
	if err != nil {
		return fmt.Errorf("redisstore: create session %s: %w", rec.ID, err)
	}
	if err := createSessionScript.Run(ctx, s.c, keys, args...).Err(); err != nil {
		return fmt.Errorf("redisstore: create session %s: %w", rec.ID, err)
	}
	return nil
}

// sessionPut returns the keys and the arguments of create_session.lua for
// rec: the access hash, the refresh expiry, then the record's fields
// (redeem.lua takes them after the transition's and the user key).
func (s *Store) sessionPut(rec authcore.SessionRecord) (keys []string, args []any, err error) {
	rexp := rec.RefreshExpiresAt.UnixMilli()
	if rec.RefreshExpiresAt.IsZero() || rexp <= 0 {
		return nil, nil, errors.New("no refresh expiry")
	}
	fields, err := sessionFields(rec, true)
	if err != nil {
		return nil, nil, err
	}
	k := s.sessionKeys(rec.FamilyID, rec.AccessHash, rec.RefreshHash)
	return []string{k.access, k.refresh, k.members}, append([]any{k.accessHex, rexp}, fields...), nil
}

// SessionByAccess implements authcore.SessionStore.
func (s *Store) SessionByAccess(ctx context.Context, ref authcore.TokenRef, now time.Time, slide time.Duration) (authcore.SessionRecord, error) {
	k := s.sessionKeys(ref.Family, ref.Hash, [32]byte{})
	reply, err := sessionByAccessScript.Run(ctx, s.c, []string{k.access}, now.UnixMilli(), now.Add(slide).UnixMilli()).Result()
	if err = scriptOutcome(err); isOutcome(err) {
		return authcore.SessionRecord{}, err
	} else if err != nil {
		return authcore.SessionRecord{}, fmt.Errorf("redisstore: session by access: %w", err)
	}
	rec, err := decodeSession(ref.Family, ref.Hash, reply)
	if err != nil {
		return authcore.SessionRecord{}, fmt.Errorf("redisstore: session by access: %w", err)
	}
	return rec, nil
}

// PrincipalByAccess implements authcore.PrincipalStore: on one Redis
// server it is SessionByAccess and the read of the session's user in one
// script (one round trip instead of two); on a Cluster, where the two keys
// live in different slots, it returns errors.ErrUnsupported and the core
// makes the two calls.
func (s *Store) PrincipalByAccess(ctx context.Context, ref authcore.TokenRef, now time.Time, slide time.Duration) (authcore.SessionRecord, authcore.User, error) {
	if s.cluster {
		return authcore.SessionRecord{}, authcore.User{}, errors.ErrUnsupported
	}
	k := s.sessionKeys(ref.Family, ref.Hash, [32]byte{})
	reply, err := principalByAccessScript.Run(ctx, s.c, []string{k.access}, now.UnixMilli(), now.Add(slide).UnixMilli(), s.userKeyPrefix()).Result()
	if err = scriptOutcome(err); isOutcome(err) {
		return authcore.SessionRecord{}, authcore.User{}, err
	} else if err != nil {
		return authcore.SessionRecord{}, authcore.User{}, fmt.Errorf("redisstore: principal by access: %w", err)
	}
	parts, ok := reply.([]any)
	if !ok || len(parts) != 2 {
		return authcore.SessionRecord{}, authcore.User{}, fmt.Errorf("redisstore: principal by access: reply %T", reply)
	}
	rec, u, err := decodePrincipal(ref, parts[0], parts[1])
	if isOutcome(err) {
		return authcore.SessionRecord{}, authcore.User{}, err
	} else if err != nil {
		return authcore.SessionRecord{}, authcore.User{}, fmt.Errorf("redisstore: principal by access: %w", err)
	}
	return rec, u, nil
}

// decodePrincipal decodes a session of ref and its user's field/value
// pairs, as principal_by_access.lua replies them: ErrNotFound if the user
// was erased.
func decodePrincipal(ref authcore.TokenRef, session, user any) (authcore.SessionRecord, authcore.User, error) {
	rec, err := decodeSession(ref.Family, ref.Hash, session)
	if err != nil {
		return authcore.SessionRecord{}, authcore.User{}, err
	}
	m, err := pairs(user)
	if err != nil {
		return authcore.SessionRecord{}, authcore.User{}, fmt.Errorf("user: %w", err)
	}
	if len(m) == 0 {
		return authcore.SessionRecord{}, authcore.User{}, authcore.ErrNotFound // the user was erased
	}
	u, err := decodeUser(rec.UserID, m)
	if err != nil {
		return authcore.SessionRecord{}, authcore.User{}, fmt.Errorf("user %s: %w", rec.UserID, err)
	}
	return rec, u, nil
}

// RedeemIfAllowed implements authcore.CheckedRedeemStore: on one Redis
// server, redeem_if_allowed.lua reads the ticket, checks it, moves it and
// stores the session in one round trip; on a Cluster it returns
// errors.ErrUnsupported and the core reads the ticket first.
func (s *Store) RedeemIfAllowed(ctx context.Context, c authcore.RedeemCheck, rec authcore.SessionRecord) (authcore.TicketRecord, authcore.User, bool, error) {
	if s.cluster {
		return authcore.TicketRecord{}, authcore.User{}, false, errors.ErrUnsupported
	}
	binding, ok := bindings[c.Binding]
	if !ok {
		return authcore.TicketRecord{}, authcore.User{}, false, fmt.Errorf("redisstore: redeem %s: unknown IP binding %q", c.ID, c.Binding)
	}
	tkeys, targs, err := s.transitionArgs(c.ID, "", "", "", authcore.StateRedeemed, "", authcore.Profile{}, c.Now)
	if err != nil {
		return authcore.TicketRecord{}, authcore.User{}, false, fmt.Errorf("redisstore: redeem %s: %w", c.ID, err)
	}
	skeys, sargs, err := s.sessionPut(rec)
	if err != nil {
		return authcore.TicketRecord{}, authcore.User{}, false, fmt.Errorf("redisstore: redeem %s: session: %w", c.ID, err)
	}
	client, err := c.Client.Unmap().MarshalBinary()
	if err != nil {
		return authcore.TicketRecord{}, authcore.User{}, false, fmt.Errorf("redisstore: redeem %s: client address: %w", c.ID, err)
	}
	args := append(targs, s.userKeyPrefix(), string(c.SecretHash[:]), string(client), binding, stateCodes[authcore.StateConfirmed])
	reply, err := redeemIfAllowedScript.Run(ctx, s.c, append(tkeys, skeys...), append(args, sargs...)...).Slice()
	if err = scriptOutcome(err); isOutcome(err) {
		return authcore.TicketRecord{}, authcore.User{}, false, err
	} else if err != nil {
		return authcore.TicketRecord{}, authcore.User{}, false, fmt.Errorf("redisstore: redeem %s: %w", c.ID, err)
	}
	status, tk, u, err := redeemReply(c.ID, "", reply)
	switch {
	case err != nil:
		return authcore.TicketRecord{}, authcore.User{}, false, fmt.Errorf("redisstore: redeem %s: %w", c.ID, err)
	case status == "refused":
		return tk, authcore.User{}, false, nil
	case status != "ok":
		return authcore.TicketRecord{}, authcore.User{}, false, fmt.Errorf("redisstore: redeem %s: unexpected reply %v", c.ID, reply)
	}
	return tk, u, true, nil
}

// bindings are the IP bindings as redeem_if_allowed.lua names them.
var bindings = map[authcore.IPBinding]string{
	"": "strict", authcore.IPStrict: "strict", authcore.IPSubnet: "subnet", authcore.IPOff: "off",
}

// TransitionAs implements authcore.PhoneTransitionStore: on one Redis
// server, phone_move.lua resolves the token, reads its user and moves the
// ticket as that user in one round trip instead of two; on a Cluster it
// returns errors.ErrUnsupported and the core authenticates first.
func (s *Store) TransitionAs(ctx context.Context, ref authcore.TokenRef, slide time.Duration, m authcore.PhoneMove) (authcore.Principal, authcore.TicketRecord, bool, error) {
	if s.cluster {
		return authcore.Principal{}, authcore.TicketRecord{}, false, errors.ErrUnsupported
	}
	from, ok := stateCodes[m.From]
	if !ok {
		return authcore.Principal{}, authcore.TicketRecord{}, false, fmt.Errorf("redisstore: %s %s: unknown state %q", m.To, m.ID, m.From)
	}
	keys, args, err := s.transitionArgs(m.ID, "", from, "", m.To, "", authcore.Profile{}, m.Now)
	if err != nil {
		return authcore.Principal{}, authcore.TicketRecord{}, false, fmt.Errorf("redisstore: %s %s: %w", m.To, m.ID, err)
	}
	k := s.sessionKeys(ref.Family, ref.Hash, [32]byte{})
	keys = append(keys, k.access)
	args = append(args, m.Now.UnixMilli(), m.Now.Add(slide).UnixMilli(), s.userKeyPrefix())
	reply, err := phoneMoveScript.Run(ctx, s.c, keys, args...).Slice()
	if err = scriptOutcome(err); isOutcome(err) {
		return authcore.Principal{}, authcore.TicketRecord{}, false, err
	} else if err != nil {
		return authcore.Principal{}, authcore.TicketRecord{}, false, fmt.Errorf("redisstore: %s %s: %w", m.To, m.ID, err)
	}
	p, tk, status, err := decodePhoneMove(ref, m.ID, reply)
	if err != nil {
		return authcore.Principal{}, authcore.TicketRecord{}, false, fmt.Errorf("redisstore: %s %s: %w", m.To, m.ID, err)
	}
	return p, tk, status == "ok", nil
}

// decodePhoneMove decodes phone_move.lua's reply: the session, its user,
// and the transition's status and ticket.
func decodePhoneMove(ref authcore.TokenRef, id string, reply []any) (authcore.Principal, authcore.TicketRecord, string, error) {
	if len(reply) != 3 {
		return authcore.Principal{}, authcore.TicketRecord{}, "", fmt.Errorf("unexpected reply of %d values", len(reply))
	}
	rec, u, err := decodePrincipal(ref, reply[0], reply[1])
	if err != nil {
		return authcore.Principal{}, authcore.TicketRecord{}, "", err
	}
	moved, _ := reply[2].([]any)
	if len(moved) != 2 {
		return authcore.Principal{}, authcore.TicketRecord{}, "", fmt.Errorf("unexpected transition reply %v", reply[2])
	}
	status, _ := moved[0].(string)
	raw, _ := moved[1].(string)
	tk, err := decodeTicket(id, raw)
	if err != nil {
		return authcore.Principal{}, authcore.TicketRecord{}, "", err
	}
	return authcore.Principal{User: u, Session: rec}, tk, status, nil
}

// RotateRefresh implements authcore.SessionStore with rotate_refresh.lua.
// The consumed refresh token is remembered until its own expiry.
func (s *Store) RotateRefresh(ctx context.Context, ref authcore.TokenRef, next authcore.SessionRecord, now time.Time) (authcore.SessionRecord, error) {
	rexp := next.RefreshExpiresAt.UnixMilli()
	if next.RefreshExpiresAt.IsZero() || rexp <= 0 {
		return authcore.SessionRecord{}, fmt.Errorf("redisstore: rotate refresh: no refresh expiry")
	}
	fields, err := sessionFields(next, false)
	if err != nil {
		return authcore.SessionRecord{}, fmt.Errorf("redisstore: rotate refresh: %w", err)
	}
	old := s.sessionKeys(ref.Family, [32]byte{}, ref.Hash)
	nk := s.sessionKeys(ref.Family, next.AccessHash, next.RefreshHash)
	used := old.base + "used:" + hex.EncodeToString(ref.Hash[:])
	args := append([]any{old.base, now.UnixMilli(), nk.accessHex, rexp}, fields...)
	reply, err := rotateRefreshScript.Run(ctx, s.c, []string{used, old.refresh, old.members, nk.access, nk.refresh}, args...).Result()
	if err = scriptOutcome(err); isOutcome(err) {
		return authcore.SessionRecord{}, err
	} else if err != nil {
		return authcore.SessionRecord{}, fmt.Errorf("redisstore: rotate refresh: %w", err)
	}
	rec, err := decodeSession(ref.Family, next.AccessHash, reply)
	if err != nil {
		return authcore.SessionRecord{}, fmt.Errorf("redisstore: rotate refresh: %w", err)
	}
	return rec, nil
}

// DeleteSession implements authcore.SessionStore.
func (s *Store) DeleteSession(ctx context.Context, ref authcore.TokenRef) error {
	k := s.sessionKeys(ref.Family, ref.Hash, [32]byte{})
	err := scriptOutcome(deleteSessionScript.Run(ctx, s.c, []string{k.access, k.members}, k.base, k.accessHex).Err())
	if err != nil && !isOutcome(err) {
		return fmt.Errorf("redisstore: delete session: %w", err)
	}
	return err
}

// ---- users ----

// UpsertIdentity implements authcore.UserStore.
//
// The user, identity and unionid keys live in different Cluster slots, so
// no script can cover them; this is a sequence of single-key steps, each
// atomic, arranged so that concurrent logins converge:
//
//   - Keys are claimed with SET NX GET: one caller wins, the others learn
//     the winner in the same command and use it.
//   - A new user's hash is written before any key points at it, so whoever
//     follows a claim finds the user; a user whose claims all failed is
//     deleted, which is safe because nothing ever pointed at it.
//   - The unionid is claimed before the identity: two identities of one
//     person (two apps of one Open Platform account) logging in for the
//     first time at once end up with the same user.
//   - As in memstore, the unionid then follows the identity's user.
//
// The one interleaving memstore cannot produce: a login of this identity
// without its unionid creates a user between our unionid claim and our
// identity claim. The identity's user wins and the unionid is moved to it;
// our user is kept (another identity may have linked to it meanwhile), at
// worst as an unreferenced record.
//
// The last step records the identity and unionid keys in the user's link
// set (<user>:ids), for EraseUser. A link to a user that is gone (an
// erasure raced this login, or was interrupted) is deleted, if it still
// points there, and the upsert starts over: the identity gets a new user.
func (s *Store) UpsertIdentity(ctx context.Context, id authcore.Identity, p authcore.Profile, newUser authcore.User) (authcore.User, bool, error) {
	var (
		u       authcore.User
		created bool
		err     error
	)
	for range upsertAttempts {
		u, created, err = s.upsertIdentity(ctx, id, p, newUser)
		var gone errUserGone
		if !errors.As(err, &gone) {
			break
		}
		links := []string{s.identityKey(id)}
		if id.UnionID != "" {
			links = append(links, s.unionKey(id.UnionID))
		}
		for _, link := range links {
			if uerr := unlinkScript.Run(ctx, s.c, []string{link}, gone.uid).Err(); uerr != nil {
				return authcore.User{}, false, fmt.Errorf("redisstore: upsert %s identity: unlink from erased user: %w", id.Provider, uerr)
			}
		}
	}
	if err != nil && !isOutcome(err) {
		return authcore.User{}, false, fmt.Errorf("redisstore: upsert %s identity: %w", id.Provider, err)
	}
	return u, created, err
}

// upsertAttempts bounds how often UpsertIdentity starts over after finding
// a link to an erased user.
const upsertAttempts = 3

// errUserGone: a link points at a user that does not exist (any more).
type errUserGone struct{ uid string }

func (e errUserGone) Error() string { return "identity links to missing user " + e.uid }

func (s *Store) upsertIdentity(ctx context.Context, id authcore.Identity, p authcore.Profile, newUser authcore.User) (authcore.User, bool, error) {
	if strings.Contains(id.Provider, ":") {
		return authcore.User{}, false, errors.New("provider name contains ':'")
	}
	ik, uk := s.identityKey(id), ""
	if id.UnionID != "" {
		uk = s.unionKey(id.UnionID)
	}

	// One round trip reads both links.
	var identCmd, unionCmd *redis.StringCmd
	cmds, _ := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		identCmd = p.Get(ctx, ik)
		if uk != "" {
			unionCmd = p.Get(ctx, uk)
		}
		return nil
	})
	for _, c := range cmds {
		if err := c.Err(); err != nil && !errors.Is(err, redis.Nil) {
			return authcore.User{}, false, err
		}
	}
	uid, unionOwner := identCmd.Val(), ""
	if unionCmd != nil {
		unionOwner = unionCmd.Val()
	}
	var err error

	switch {
	case uid != "":
	case unionOwner != "":
		// Another identity of the same person: link this one to its user.
		if uid, err = s.claim(ctx, ik, unionOwner); err != nil {
			return authcore.User{}, false, err
		}
	default:
		var created bool
		uid, unionOwner, created, err = s.createUser(ctx, ik, uk, newUser)
		if err != nil {
			return authcore.User{}, false, err
		}
		if created {
			return newUser, true, nil
		}
	}
	links := []string{ik}
	if uk != "" {
		links = append(links, uk)
		if unionOwner != uid {
			if err := s.c.Set(ctx, uk, uid, 0).Err(); err != nil {
				return authcore.User{}, false, err
			}
		}
	}
	return s.updateUser(ctx, uid, p, links)
}

// createUser stores nu and claims the unionid (if any) and the identity for
// it. It returns the user that owns the identity in the end, the unionid's
// owner, and whether that is nu.
func (s *Store) createUser(ctx context.Context, ik, uk string, nu authcore.User) (uid, unionOwner string, created bool, err error) {
	key, linksKey := s.userKey(nu.ID), s.userLinksKey(nu.ID)
	links := []any{ik}
	if uk != "" {
		links = append(links, uk)
	}
	// The links are recorded before they are claimed: a name in the set
	// may turn out to point elsewhere, which EraseUser checks.
	if _, err := s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key, "n", nu.Nickname, "a", nu.AvatarURL, "c", encodeTime(nu.CreatedAt))
		p.SAdd(ctx, linksKey, links...)
		return nil
	}); err != nil {
		return "", "", false, err
	}
	drop := func() error { return s.c.Del(ctx, key, linksKey).Err() }
	if uk != "" {
		if unionOwner, err = s.claim(ctx, uk, nu.ID); err != nil {
			return "", "", false, err
		}
		if unionOwner != nu.ID {
			// Another login of this person won; nothing points at our user.
			if err := drop(); err != nil {
				return "", "", false, err
			}
			uid, err = s.claim(ctx, ik, unionOwner)
			return uid, unionOwner, false, err
		}
	}
	if uid, err = s.claim(ctx, ik, nu.ID); err != nil {
		return "", "", false, err
	}
	if uid == nu.ID {
		// Ours, even if a concurrent login that followed our unionid linked it.
		return uid, unionOwner, true, nil
	}
	if uk == "" {
		// A concurrent login of this identity won; nothing points at our user.
		return uid, unionOwner, false, drop()
	}
	return uid, unionOwner, false, nil
}

// claim sets key to val unless it exists, and returns its value in the end.
func (s *Store) claim(ctx context.Context, key, val string) (string, error) {
	old, err := s.c.SetArgs(ctx, key, val, redis.SetArgs{Mode: "NX", Get: true}).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return val, nil
	case err != nil:
		return "", err
	}
	return old, nil
}

// updateUser records links (key names) in the user's link set, applies the
// non-empty fields of p and returns the user, or errUserGone.
func (s *Store) updateUser(ctx context.Context, uid string, p authcore.Profile, links []string) (authcore.User, bool, error) {
	args := []any{p.Nickname, p.AvatarURL}
	for _, l := range links {
		args = append(args, l)
	}
	reply, err := updateUserScript.Run(ctx, s.c, []string{s.userKey(uid), s.userLinksKey(uid)}, args...).Result()
	if err != nil {
		return authcore.User{}, false, err
	}
	m, err := pairs(reply)
	if err != nil {
		return authcore.User{}, false, err
	}
	if len(m) == 0 {
		return authcore.User{}, false, errUserGone{uid}
	}
	u, err := decodeUser(uid, m)
	return u, false, err
}

func decodeUser(id string, m map[string]string) (authcore.User, error) {
	created, err := decodeTime(m["c"])
	if err != nil {
		return authcore.User{}, errors.New("corrupt user (time)")
	}
	return authcore.User{ID: id, Nickname: m["n"], AvatarURL: m["a"], CreatedAt: created}, nil
}

// User implements authcore.UserStore.
func (s *Store) User(ctx context.Context, id string) (authcore.User, error) {
	m, err := s.c.HGetAll(ctx, s.userKey(id)).Result()
	if err != nil {
		return authcore.User{}, fmt.Errorf("redisstore: user %s: %w", id, err)
	}
	if len(m) == 0 {
		return authcore.User{}, authcore.ErrNotFound
	}
	u, err := decodeUser(id, m)
	if err != nil {
		return authcore.User{}, fmt.Errorf("redisstore: user %s: %w", id, err)
	}
	return u, nil
}

// PutSessionKey implements authcore.UserStore. The key replaces the last
// one of openid and has no TTL (there is one per openid).
func (s *Store) PutSessionKey(ctx context.Context, openid, sessionKey string) error {
	if err := s.c.Set(ctx, s.sessionKeyKey(openid), sessionKey, 0).Err(); err != nil {
		return fmt.Errorf("redisstore: put session key: %w", err)
	}
	return nil
}

// SessionKey implements authcore.UserStore.
func (s *Store) SessionKey(ctx context.Context, openid string) (string, error) {
	k, err := s.c.Get(ctx, s.sessionKeyKey(openid)).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return "", authcore.ErrNotFound
	case err != nil:
		return "", fmt.Errorf("redisstore: session key: %w", err)
	}
	return k, nil
}

// ---- replay cache and rate limits ----

// FirstUse implements authcore.ReplayCache: SET key 1 NX PX ttl. A ttl
// under a millisecond counts as one; a ttl of zero or less records nothing
// and reports a first use, as memstore does.
func (s *Store) FirstUse(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return true, nil
	}
	err := s.c.Do(ctx, "SET", s.prefix+":once:"+key, "1", "NX", "PX", ceilMillis(ttl)).Err()
	switch {
	case errors.Is(err, redis.Nil):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("redisstore: first use: %w", err)
	}
	return true, nil
}

// Allow counts one event for key in a fixed window of length per and
// reports whether it is within limit; when it is not, retryAfter is the
// time left in the window. It implements handlers.Limiter.
func (s *Store) Allow(ctx context.Context, key string, limit int, per time.Duration) (ok bool, retryAfter time.Duration, err error) {
	if per <= 0 { // every event is a window of its own, as in memstore
		return limit > 0, 0, nil
	}
	res, err := allowScript.Run(ctx, s.c, []string{s.prefix + ":rate:" + key}, ceilMillis(per)).Int64Slice()
	if err == nil && len(res) != 2 {
		err = fmt.Errorf("unexpected reply %v", res)
	}
	if err != nil {
		return false, 0, fmt.Errorf("redisstore: allow: %w", err)
	}
	if res[0] <= int64(limit) {
		return true, 0, nil
	}
	return false, time.Duration(res[1]) * time.Millisecond, nil
}

func ceilMillis(d time.Duration) int64 {
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}

// ---- WeChat access tokens (wechat.TokenCache) ----

func (s *Store) accessTokenKey(appID string) string { return s.prefix + ":{at:" + appID + "}" }

func (s *Store) lockKey(name string) string { return s.prefix + ":{lock:" + name + "}" }

// AccessToken returns the access token stored for appID and its expiry,
// or authcore.ErrNotFound when there is none or it has expired. It
// implements wechat.TokenCache.
func (s *Store) AccessToken(ctx context.Context, appID string) (string, time.Time, error) {
	raw, err := s.c.Get(ctx, s.accessTokenKey(appID)).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return "", time.Time{}, authcore.ErrNotFound
	case err != nil:
		return "", time.Time{}, fmt.Errorf("redisstore: access token: %w", err)
	}
	ms, token, ok := strings.Cut(raw, " ")
	exp, err := decodeTime(ms)
	if !ok || err != nil || exp.IsZero() || token == "" {
		return "", time.Time{}, errors.New("redisstore: access token: corrupt value") // the value is a secret: not shown
	}
	return token, exp, nil
}

// PutAccessToken stores appID's access token until expiresAt (one SET
// PXAT), replacing the previous one; an expiresAt in the past deletes it.
// It implements wechat.TokenCache.
func (s *Store) PutAccessToken(ctx context.Context, appID, token string, expiresAt time.Time) error {
	key := s.accessTokenKey(appID)
	var err error
	if !expiresAt.After(time.Now()) {
		err = s.c.Del(ctx, key).Err()
	} else {
		err = s.c.Do(ctx, "SET", key, encodeTime(expiresAt)+" "+token, "PXAT", expiresAt.UnixMilli()).Err()
	}
	if err != nil {
		return fmt.Errorf("redisstore: put access token: %w", err)
	}
	return nil
}

// unlockTimeout bounds a TryLock release, which has no context of its own.
const unlockTimeout = 2 * time.Second

// TryLock takes the lease name for ttl unless someone else holds it: SET
// NX PX with a random token. The returned release deletes the lock only if
// it still holds that token (a script compares and deletes), so a holder
// whose lease expired cannot free someone else's; calling it again does
// nothing. It implements wechat.TokenCache.
func (s *Store) TryLock(ctx context.Context, name string, ttl time.Duration) (release func(), ok bool, err error) {
	if ttl <= 0 {
		return nil, false, authcore.Errorf(authcore.KindInvalid, "redisstore: lock %q: ttl must be positive", name)
	}
	key, token := s.lockKey(name), rand.Text()
	err = s.c.Do(ctx, "SET", key, token, "NX", "PX", ceilMillis(ttl)).Err()
	switch {
	case errors.Is(err, redis.Nil):
		return func() {}, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("redisstore: lock %s: %w", name, err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), unlockTimeout)
			defer cancel()
			// A failed release leaves the lock to expire with its TTL.
			_ = unlockScript.Run(ctx, s.c, []string{key}, token).Err()
		})
	}, true, nil
}
