package memstore

import (
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/loginhub/loginhub/authcore"
)

// The records the store keeps in numbers, tickets and sessions, are held in
// a compact form: their strings packed into one string, their times as Unix
// nanoseconds, and the two session maps keyed and valued by hashes. Every
// garbage-collection cycle marks every live object, so the records' shape is
// what a cycle costs: a SessionRecord in a map is a dozen pointers to follow
// (its strings, its AMR slice, its step-up map, its times' locations), the compact form one
// (BenchmarkGCWithRecords measures what a cycle costs either way). It
// matters most on a node that runs for days: a session stays until its
// refresh token expires, so sessions become most of the heap. The price is
// an unpack and a repack per move.

// maxPacked is the most strings one packed value holds.
const maxPacked = 12

// packed is up to maxPacked strings stored back to back in one string.
type packed struct {
	all  string
	ends [maxPacked]uint32 // ends[i] is where string i ends in all
}

// pack packs fields; it panics if there are more than maxPacked, which is a
// mistake in this file, not a condition of the data.
func pack(fields ...string) packed {
	if len(fields) > maxPacked {
		panic("memstore: pack: too many fields")
	}
	var p packed
	var b strings.Builder
	n := 0
	for _, f := range fields {
		n += len(f)
	}
	b.Grow(n)
	for i, f := range fields {
		b.WriteString(f)
		p.ends[i] = uint32(b.Len())
	}
	p.all = b.String()
	return p
}

// field returns string i.
func (p packed) field(i int) string {
	start := uint32(0)
	if i > 0 {
		start = p.ends[i-1]
	}
	return p.all[start:p.ends[i]]
}

// nanos is t as Unix nanoseconds, 0 for the zero time (whose UnixNano is
// undefined).
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// timeOf reverses nanos. The result has no monotonic reading and is in the
// local zone; records are compared with Before, After and Equal, which see
// the same instant.
func timeOf(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// joinStates and splitStates store a trail or an AMR list as one string.
// States and authentication methods are identifiers without spaces.
func joinStates(trail []authcore.State) string {
	var b strings.Builder
	n := len(trail)
	for _, st := range trail {
		n += len(st)
	}
	b.Grow(n)
	for i, st := range trail {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(string(st))
	}
	return b.String()
}

func splitStates(s string) []authcore.State {
	if s == "" {
		return nil
	}
	out := make([]authcore.State, 0, strings.Count(s, " ")+1)
	for f := range strings.SplitSeq(s, " ") {
		out = append(out, authcore.State(f))
	}
	return out
}

// storedTicket is a TicketRecord in compact form; its id is the key of
// Store.tickets.
type storedTicket struct {
	version          uint64
	expiresAt        int64
	createdAt        int64
	requesterCreated int64
	deleteAt         int64 // past this, the ticket is gone (retention)
	watchSecretHash  [32]byte
	clientIP         [16]byte // ClientIP.As16, with its zone in text
	clientIPKind     uint8    // 0: no address, 4: IPv4, 6: IPv6
	text             packed   // the ticket fields below
}

// Fields of storedTicket.text.
const (
	tState = iota
	tTrail
	tDPoPJKT
	tClientIPZone
	tRequesterIP
	tRequesterLocation
	tRequesterDevice
	tRequesterUserAgent
	tScannerID
	tScannerNickname
	tScannerAvatar
	tVia
)

func storeTicket(r authcore.TicketRecord, deleteAt time.Time) storedTicket {
	var kind uint8
	switch {
	case r.ClientIP.Is4():
		kind = 4
	case r.ClientIP.IsValid():
		kind = 6
	}
	return storedTicket{
		version:          r.Version,
		expiresAt:        nanos(r.ExpiresAt),
		createdAt:        nanos(r.CreatedAt),
		requesterCreated: nanos(r.Requester.CreatedAt),
		deleteAt:         nanos(deleteAt),
		watchSecretHash:  r.WatchSecretHash,
		clientIP:         r.ClientIP.As16(),
		clientIPKind:     kind,
		text: pack(string(r.State), joinStates(r.Trail), r.DPoPJKT, r.ClientIP.Zone(),
			r.Requester.IP, r.Requester.Location, r.Requester.Device, r.Requester.UserAgent,
			r.ScannerID, r.Scanner.Nickname, r.Scanner.AvatarURL, r.Via),
	}
}

// state, scannerID, expired and gone read a field without unpacking the rest.
func (t *storedTicket) state() authcore.State { return authcore.State(t.text.field(tState)) }
func (t *storedTicket) scannerID() string     { return t.text.field(tScannerID) }

// expired reports whether the ticket's time is up at now.
func (t *storedTicket) expired(now time.Time) bool { return !now.Before(timeOf(t.expiresAt)) }

// gone reports whether the ticket is past retention at now.
func (t *storedTicket) gone(now time.Time) bool { return now.After(timeOf(t.deleteAt)) }

// record unpacks ticket id; the caller owns the result.
func (t *storedTicket) record(id string) authcore.TicketRecord {
	var ip netip.Addr
	switch t.clientIPKind {
	case 4:
		ip = netip.AddrFrom16(t.clientIP).Unmap()
	case 6:
		ip = netip.AddrFrom16(t.clientIP).WithZone(t.text.field(tClientIPZone))
	}
	return authcore.TicketRecord{
		ID:              id,
		State:           t.state(),
		Version:         t.version,
		Trail:           splitStates(t.text.field(tTrail)),
		ExpiresAt:       timeOf(t.expiresAt),
		CreatedAt:       timeOf(t.createdAt),
		WatchSecretHash: t.watchSecretHash,
		DPoPJKT:         t.text.field(tDPoPJKT),
		ClientIP:        ip,
		Requester: authcore.Requester{
			IP:        t.text.field(tRequesterIP),
			Location:  t.text.field(tRequesterLocation),
			Device:    t.text.field(tRequesterDevice),
			UserAgent: t.text.field(tRequesterUserAgent),
			CreatedAt: timeOf(t.requesterCreated),
		},
		ScannerID: t.scannerID(),
		Scanner:   authcore.Profile{Nickname: t.text.field(tScannerNickname), AvatarURL: t.text.field(tScannerAvatar)},
		Via:       t.text.field(tVia),
	}
}

// storedSession is a SessionRecord in compact form; its access hash is the
// key of Store.sessions.
type storedSession struct {
	refreshHash      [32]byte
	accessExpiresAt  int64
	refreshExpiresAt int64
	createdAt        int64
	authTime         int64
	lastUsedAt       int64
	text             packed // the session fields below
}

// Fields of storedSession.text.
const (
	sID = iota
	sFamilyID
	sUserID
	sAuth // joinAuth: the AMR and the step-up times
	sProvider
	sSubject
	sUnionID
	sDeviceID
	sMethod
	sIPMasked
	sRegion
	sUserAgent
)

func storeSession(r authcore.SessionRecord) storedSession {
	return storedSession{
		refreshHash:      r.RefreshHash,
		accessExpiresAt:  nanos(r.AccessExpiresAt),
		refreshExpiresAt: nanos(r.RefreshExpiresAt),
		createdAt:        nanos(r.CreatedAt),
		authTime:         nanos(r.AuthTime),
		lastUsedAt:       nanos(r.LastUsedAt),
		text: pack(r.ID, r.FamilyID, r.UserID, joinAuth(r.AMR, r.StepUps), r.Provider, r.Subject, r.UnionID,
			r.DeviceID, r.Method, r.IPMasked, r.Region, r.UserAgent),
	}
}

func (s *storedSession) familyID() string { return s.text.field(sFamilyID) }
func (s *storedSession) userID() string   { return s.text.field(sUserID) }

// belongsTo reports whether ref names this session's user and family (its
// hash is the map key).
func (s *storedSession) belongsTo(ref authcore.TokenRef) bool {
	return s.familyID() == ref.Family && s.userID() == ref.UserID
}

// joinAuth stores a session's AMR and step-up times as one string, so
// that a session without step-ups (most) costs nothing for them: the AMR,
// then each step-up as method@<Unix nanoseconds>, in order of method, all
// space-separated ("wx face face@1795660805135000000"). Authentication
// methods are identifiers without spaces or "@". A zero time is no
// step-up.
func joinAuth(amr []string, stepUps map[string]time.Time) string {
	if len(stepUps) == 0 {
		return strings.Join(amr, " ")
	}
	words := slices.Clone(amr)
	for _, m := range slices.Sorted(maps.Keys(stepUps)) {
		if at := stepUps[m]; !at.IsZero() {
			words = append(words, m+"@"+strconv.FormatInt(nanos(at), 10))
		}
	}
	return strings.Join(words, " ")
}

// amr returns the AMR of joinAuth's string.
func (s *storedSession) amr() []string {
	a := s.text.field(sAuth)
	if a == "" {
		return nil
	}
	if !strings.Contains(a, "@") {
		return strings.Split(a, " ")
	}
	var out []string
	for w := range strings.SplitSeq(a, " ") {
		if !strings.Contains(w, "@") {
			out = append(out, w)
		}
	}
	return out
}

// stepUps returns the step-up times of joinAuth's string, nil if none.
func (s *storedSession) stepUps() map[string]time.Time {
	a := s.text.field(sAuth)
	if !strings.Contains(a, "@") {
		return nil
	}
	out := map[string]time.Time{}
	for w := range strings.SplitSeq(a, " ") {
		if m, n, ok := strings.Cut(w, "@"); ok {
			ns, _ := strconv.ParseInt(n, 10, 64) // written by joinAuth
			out[m] = timeOf(ns)
		}
	}
	return out
}

// record unpacks the session stored under accessHash; the caller owns the
// result.
func (s *storedSession) record(accessHash [32]byte) authcore.SessionRecord {
	return authcore.SessionRecord{
		ID:               s.text.field(sID),
		FamilyID:         s.familyID(),
		UserID:           s.userID(),
		AccessHash:       accessHash,
		RefreshHash:      s.refreshHash,
		AccessExpiresAt:  timeOf(s.accessExpiresAt),
		RefreshExpiresAt: timeOf(s.refreshExpiresAt),
		CreatedAt:        timeOf(s.createdAt),
		AMR:              s.amr(),
		StepUps:          s.stepUps(),
		AuthTime:         timeOf(s.authTime),
		Provider:         s.text.field(sProvider),
		Subject:          s.text.field(sSubject),
		UnionID:          s.text.field(sUnionID),
		DeviceID:         s.text.field(sDeviceID),
		Method:           s.text.field(sMethod),
		IPMasked:         s.text.field(sIPMasked),
		Region:           s.text.field(sRegion),
		UserAgent:        s.text.field(sUserAgent),
		LastUsedAt:       timeOf(s.lastUsedAt),
	}
}
