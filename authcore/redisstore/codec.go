package redisstore

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/loginhub/loginhub/authcore"
)

// How records are written in Redis: tickets as one string (the message a
// move publishes too), sessions and users as hashes, times as unix
// milliseconds (so times come back to the millisecond, in UTC).

// State codes: a ticket stores each state as one letter.
var (
	stateCodes = map[authcore.State]string{
		authcore.StatePending: "p", authcore.StateScanned: "s", authcore.StateConfirmed: "c",
		authcore.StateRedeemed: "r", authcore.StateCancelled: "x", authcore.StateExpired: "e",
	}
	codeStates    = invertCodes(stateCodes)
	terminalCodes = terminalCodesOf(stateCodes) // passed to the ticket scripts, so Terminal stays the one definition
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
// bytes, like a User-Agent, would turn it into a hash table) and than
// JSON, and the ticket scripts rewrite only its head (ticket.lua). A move
// publishes it whole, as written (watch secret hash included: whoever can
// subscribe to the channel can read the key as well).
//
// Format "1" is the ticket a phone scans. Format "2" has one more field in
// its head, after the scanner's avatar: Via, set when a third-party login
// in the desktop's browser confirmed it. Only such tickets are written as
// "2", so a node of the release before, which reads "1" only, never meets
// one from a scan while a cluster is being upgraded.
const (
	ticketFormat    = "1"
	ticketFormatVia = "2"
)

// Positions of the ticket fields. The head (up to tScannerAvatar) is what
// ticket.lua reads and writes; keep both in step.
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

	fields := f[:]
	if r.Via != "" {
		f[tFormat] = ticketFormatVia
		fields = slices.Insert(fields, tScannerAvatar+1, r.Via)
	}
	var b strings.Builder
	for _, v := range fields {
		b.WriteString(strconv.Itoa(len(v)))
		b.WriteByte(':')
		b.WriteString(v)
	}
	return b.String(), nil
}

func decodeTicket(id, raw string) (authcore.TicketRecord, error) {
	var f [tFields]string
	via := ""
	for i := 0; i < tFields; i++ {
		n, rest, ok := strings.Cut(raw, ":")
		size, err := strconv.Atoi(n)
		if !ok || err != nil || size < 0 || size > len(rest) {
			return authcore.TicketRecord{}, fmt.Errorf("corrupt ticket (field %d)", i)
		}
		v := rest[:size]
		raw = rest[size:]
		if i == tScannerAvatar+1 && f[tFormat] == ticketFormatVia && via == "" {
			via, i = v, i-1 // the head's extra field; the next one is tCreated
			if via == "" {
				return authcore.TicketRecord{}, errors.New("corrupt ticket (via)")
			}
			continue
		}
		f[i] = v
	}
	if raw != "" || (f[tFormat] != ticketFormat && f[tFormat] != ticketFormatVia) {
		return authcore.TicketRecord{}, errors.New("corrupt ticket (format)")
	}
	r := authcore.TicketRecord{ID: id, DPoPJKT: f[tDPoPJKT], ScannerID: f[tScannerID], Via: via,
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

// sessionFields is the record as the field/value pairs of its hash: "ah"
// and "rh" are the token hashes (hex), "at" AuthTime, the step-up times
// are in the fields stepUpField names (set by mark_step_up.lua); the user
// and the family are in the key. Every field but the step-ups of methods
// other than face is written, even empty, so that writing them replaces a
// whole record (a family's hash is written whole once, at CreateSession).
// withIdentity false leaves out the fields that RotateRefresh keeps from
// the old record (amr, the step-ups, at, p, s, un, d, m, ip, rg, ua). "lu" is
// LastUsedAt, which live_session (session.lua) sets as it slides "ae".
func sessionFields(r authcore.SessionRecord, withIdentity bool) ([]any, error) {
	f := []any{
		"i", r.ID,
		"ah", hex.EncodeToString(r.AccessHash[:]),
		"rh", hex.EncodeToString(r.RefreshHash[:]),
		"ae", encodeTime(r.AccessExpiresAt),
		"re", encodeTime(r.RefreshExpiresAt),
		"c", encodeTime(r.CreatedAt),
		"lu", encodeTime(r.LastUsedAt),
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
		f = append(f, "amr", amr, stepUpField(authcore.MethodFace), encodeTime(r.StepUps[authcore.MethodFace]))
		for _, m := range slices.Sorted(maps.Keys(r.StepUps)) {
			if m == authcore.MethodFace {
				continue
			}
			if !authcore.ValidStepUpMethod(m) {
				return nil, fmt.Errorf("bad step-up method %q", m)
			}
			f = append(f, stepUpField(m), encodeTime(r.StepUps[m]))
		}
		f = append(f, "at", encodeTime(r.AuthTime), "p", r.Provider, "s", r.Subject, "un", r.UnionID,
			"d", r.DeviceID, "m", r.Method, "ip", r.IPMasked, "rg", r.Region, "ua", r.UserAgent)
	}
	return f, nil
}

// stepUpField names the session hash field of method's step-up time
// (unix ms): "fa" for a face check, the field of the releases that kept
// face times only, so that their sessions (and their nodes, during a
// rolling upgrade) read the same face time; "su:<method>" for the others.
func stepUpField(method string) string {
	if method == authcore.MethodFace {
		return "fa"
	}
	return "su:" + method
}

// stepUpMethod reverses stepUpField: the method whose time a session hash
// field holds, if it holds one.
func stepUpMethod(field string) (string, bool) {
	if field == "fa" {
		return authcore.MethodFace, true
	}
	m, ok := strings.CutPrefix(field, "su:")
	return m, ok && m != authcore.MethodFace && authcore.ValidStepUpMethod(m)
}

// decodeSession reads the session of ref's user and family from a
// script's field/value pairs.
func decodeSession(ref authcore.TokenRef, reply any) (authcore.SessionRecord, error) {
	m, err := pairs(reply)
	if err != nil {
		return authcore.SessionRecord{}, err
	}
	r := authcore.SessionRecord{ID: m["i"], FamilyID: ref.Family, UserID: ref.UserID,
		Provider: m["p"], Subject: m["s"], UnionID: m["un"],
		DeviceID: m["d"], Method: m["m"], IPMasked: m["ip"], Region: m["rg"], UserAgent: m["ua"]}
	for _, h := range []struct {
		dst *[32]byte
		src string
	}{{&r.AccessHash, m["ah"]}, {&r.RefreshHash, m["rh"]}} {
		if n, err := hex.Decode(h.dst[:], []byte(h.src)); err != nil || n != len(h.dst) || len(h.src) != 2*len(h.dst) {
			return authcore.SessionRecord{}, errors.New("corrupt session (token hash)")
		}
	}
	for _, t := range []struct {
		dst *time.Time
		src string
	}{{&r.AccessExpiresAt, m["ae"]}, {&r.RefreshExpiresAt, m["re"]}, {&r.CreatedAt, m["c"]}, {&r.AuthTime, m["at"]}, {&r.LastUsedAt, m["lu"]}} {
		if *t.dst, err = decodeTime(t.src); err != nil {
			return authcore.SessionRecord{}, errors.New("corrupt session (time)")
		}
	}
	for name, v := range m {
		method, ok := stepUpMethod(name)
		if !ok || v == "" {
			continue
		}
		at, err := decodeTime(v)
		if err != nil {
			return authcore.SessionRecord{}, errors.New("corrupt session (step-up time)")
		}
		if r.StepUps == nil {
			r.StepUps = map[string]time.Time{}
		}
		r.StepUps[method] = at
	}
	if amr := m["amr"]; amr != "" {
		if err := json.Unmarshal([]byte(amr), &r.AMR); err != nil {
			return authcore.SessionRecord{}, errors.New("corrupt session (amr)")
		}
	}
	return r, nil
}

// decodePrincipal reads a session of ref and its user from the
// field/value pairs the session scripts reply.
func decodePrincipal(ref authcore.TokenRef, session, user any) (authcore.Principal, error) {
	rec, err := decodeSession(ref, session)
	if err != nil {
		return authcore.Principal{}, err
	}
	u, err := decodeUserReply(ref.UserID, user)
	if err != nil {
		return authcore.Principal{}, err
	}
	return authcore.Principal{User: u, Session: rec}, nil
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

// decodeUserReply reads user id from a script's reply of its hash's
// field/value pairs.
func decodeUserReply(id string, reply any) (authcore.User, error) {
	m, err := pairs(reply)
	if err != nil {
		return authcore.User{}, fmt.Errorf("user: %w", err)
	}
	u, err := decodeUser(id, m)
	if err != nil {
		return authcore.User{}, fmt.Errorf("user %s: %w", id, err)
	}
	return u, nil
}

// decodeUser reads user id from its hash's field/value pairs.
func decodeUser(id string, m map[string]string) (authcore.User, error) {
	created, err := decodeTime(m["c"])
	if err != nil {
		return authcore.User{}, errors.New("corrupt user (time)")
	}
	return authcore.User{ID: id, Nickname: m["n"], AvatarURL: m["a"], CreatedAt: created}, nil
}
