package authcore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Lifetimes from the API contract.
const (
	DefaultTicketTTL = 120 * time.Second
	AccessTokenTTL   = 30 * time.Minute
	RefreshTokenTTL  = 7 * 24 * time.Hour
	// ticketRetention keeps a ticket in the store after it expires, so a
	// desktop that reconnects late learns "expired" rather than "not found".
	ticketRetention = 5 * time.Minute
)

// IPBinding says how strictly watch, status and redeem must come from the
// address that created the ticket.
type IPBinding string

// IP binding policies (LOGINHUB_IP_BINDING).
const (
	IPStrict IPBinding = "strict" // the same address
	IPSubnet IPBinding = "subnet" // the same /24 (IPv4) or /64 (IPv6)
	IPOff    IPBinding = "off"    // not checked
)

// Allows reports whether client may watch, poll or redeem a ticket
// created from bound. An unset (empty) binding is IPStrict.
func (b IPBinding) Allows(bound, client netip.Addr) bool {
	bound, client = bound.Unmap(), client.Unmap()
	switch b {
	case IPOff:
		return true
	case IPSubnet:
		bits := 24
		if bound.Is6() {
			bits = 64
		}
		if bound.Is4() != client.Is4() {
			return false
		}
		pb, err1 := bound.Prefix(bits)
		pc, err2 := client.Prefix(bits)
		return err1 == nil && err2 == nil && pb == pc
	default:
		return bound == client
	}
}

// WeChatSession is what code2Session yields.
type WeChatSession struct {
	OpenID, UnionID, SessionKey string
}

// WeChat is what the core needs from WeChat's server API and its data
// formats (authcore/wechat.Core implements it). Every method returns *Error
// values of the kinds a handler can show: unauthorized for a bad code,
// invalid for undecryptable data, upstream_unavailable when WeChat fails...
type WeChat interface {
	// Code2Session exchanges a wx.login code.
	Code2Session(ctx context.Context, code string) (WeChatSession, error)
	// PhoneByCode exchanges a getPhoneNumber button code (current API).
	PhoneByCode(ctx context.Context, code string) (Phone, error)
	// DecryptPhone opens the legacy encrypted phone payload under sessionKey.
	DecryptPhone(sessionKey, encryptedData, iv string) (Phone, error)
	// DecryptUserInfo opens the legacy encrypted profile under sessionKey,
	// checking the rawData signature when one is given.
	DecryptUserInfo(sessionKey, encryptedData, iv, rawData, signature string) (WeChatUserInfo, error)
	// CheckSessionKey asks WeChat whether sessionKey is still openid's
	// current session_key.
	CheckSessionKey(ctx context.Context, openid, sessionKey string) (bool, error)
}

// Phone is a verified phone number.
type Phone struct {
	Number      string // without country code, e.g. 13800001234
	CountryCode string // e.g. "86"
}

// WeChatUserInfo is the profile wx.getUserInfo's encrypted data holds.
type WeChatUserInfo struct {
	OpenID    string `json:"openid"`
	UnionID   string `json:"unionid,omitempty"`
	Nickname  string `json:"nickname"`
	AvatarURL string `json:"avatar_url"`
	Gender    int    `json:"gender"`
	City      string `json:"city,omitempty"`
	Province  string `json:"province,omitempty"`
	Country   string `json:"country,omitempty"`
	Language  string `json:"language,omitempty"`
}

// Config configures a Service. Zero values are explained per field.
type Config struct {
	Store      Store            // required
	Signer     *Signer          // required
	WeChat     WeChat           // nil: the /v1/wx endpoints answer upstream_unavailable
	SMS        SMSSender        // nil: SMS login is disabled (the /v1/sms endpoints answer not_found)
	Limiter    Limiter          // counts SMS sends and password failures across nodes; required with SMS; nil: no password login
	Vault      *Vault           // seals personal data at rest; required
	TicketTTL  time.Duration    // zero: DefaultTicketTTL
	IPBinding  IPBinding        // empty: IPStrict
	PublicURL  string           // base of qr_url and of DPoP htu; required
	DPoPMaxAge time.Duration    // zero: 60s
	Now        func() time.Time // nil: time.Now
	Logger     *slog.Logger     // nil: discard
	Regions    Regions          // where a client address is; nil: PrefixRegions
	Risk       RiskPolicy       // when a login is stepped up; empty: RiskNewRegion
	// OAuth are the third-party logins by the name of their identities
	// (ProviderQQ, ProviderWeibo, ProviderWeChatWeb, "oidc:<name>"); none:
	// no third-party login.
	OAuth map[string]OAuthProvider
	// Carriers is carrier one-click login and number verification; nil:
	// the /v1/carrier endpoints answer not_found. Needs Limiter.
	Carriers Carriers
	// Verifiers are the step-up checks by name (VerifierWeChatFace for
	// WeChat's face verification); none: the /v1/face endpoints answer
	// upstream_unavailable.
	Verifiers map[string]Verifier
	// OnStepUpCheck, if set, is called with every answer of a verifier
	// about a check (for metrics); it must be fast and safe for concurrent
	// use.
	OnStepUpCheck func(StepUpCheck)
	// OnRiskDecision, if set, is called with every risk decision (for
	// metrics); it must be fast and safe for concurrent use.
	OnRiskDecision func(RiskDecision)
	// PasswordHashers bounds the argon2id hashes computed at once (each
	// takes DefaultArgon2.Memory); zero: GOMAXPROCS - 1, at least 1.
	PasswordHashers int
	// PasswordWait is how long a password check waits for a hashing slot
	// before it answers upstream_unavailable; zero: DefaultPasswordWait.
	PasswordWait time.Duration
}

// Service is the login core: QR tickets, WeChat login and sessions. It is
// safe for concurrent use. Methods return *Error values (see Kind); any
// other error is a bug or a store failure and reads as KindInternal.
type Service struct {
	store     Store
	signer    *Signer
	wechat    WeChat
	verifiers map[string]Verifier
	onStepUp  func(StepUpCheck)
	sms       SMSSender
	limiter   Limiter
	vault     *Vault
	ttl       time.Duration
	binding   IPBinding
	publicURL string
	dpop      DPoPVerifier
	now       func() time.Time
	log       *slog.Logger
	regions   Regions
	risk      RiskPolicy
	oauth     map[string]OAuthProvider
	carriers  Carriers
	onRisk    func(RiskDecision)
	hashes    *hashGate
	common    map[string]struct{} // common passwords, lower-case
	dummyHash string              // checked for logins without a password, to take the same time
}

// NewService checks cfg and returns a Service.
func NewService(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Signer == nil || cfg.Vault == nil {
		return nil, errors.New("authcore: Store, Signer and Vault are required")
	}
	if cfg.PublicURL == "" {
		return nil, errors.New("authcore: PublicURL is required")
	}
	if cfg.SMS != nil && cfg.Limiter == nil {
		return nil, errors.New("authcore: a Limiter is required with SMS")
	}
	if cfg.Carriers != nil && cfg.Limiter == nil {
		return nil, errors.New("authcore: a Limiter is required with Carriers")
	}
	s := &Service{
		store: cfg.Store, signer: cfg.Signer, wechat: cfg.WeChat, verifiers: cfg.Verifiers, vault: cfg.Vault,
		sms: cfg.SMS, limiter: cfg.Limiter,
		ttl: cfg.TicketTTL, binding: cfg.IPBinding,
		publicURL: strings.TrimRight(cfg.PublicURL, "/"),
		now:       cfg.Now, log: cfg.Logger, regions: cfg.Regions,
		risk: cfg.Risk, onRisk: cfg.OnRiskDecision, oauth: cfg.OAuth,
		carriers: cfg.Carriers, onStepUp: cfg.OnStepUpCheck,
	}
	if s.regions == nil {
		s.regions = PrefixRegions{}
	}
	switch s.risk {
	case "":
		s.risk = RiskNewRegion
	case RiskNewRegion, RiskStrict, RiskOff:
	default:
		return nil, fmt.Errorf("authcore: unknown risk policy %q", s.risk)
	}
	for name, p := range s.oauth {
		if !validOAuthName(name) || p == nil {
			return nil, fmt.Errorf("authcore: bad OAuth provider %q", name)
		}
	}
	for name, v := range s.verifiers {
		if !validProvider(name) || strings.Contains(name, ":") || v == nil {
			return nil, fmt.Errorf("authcore: bad verifier %q (a name of up to 64 of a-z 0-9 _ - .)", name)
		}
		// The method is an amr the session keeps a time of (StepUps);
		// a login's amr would read as that login.
		if m := v.Method(); !ValidStepUpMethod(m) || slices.Contains(loginMethods, m) || s.oauth[m] != nil {
			return nil, fmt.Errorf("authcore: bad verifier %q: method %q (an amr of 1 to 32 of a-z 0-9, starting with a letter, and no login's: %s or an OAuth provider's name)",
				name, m, strings.Join(loginMethods, ", "))
		}
	}
	if s.ttl <= 0 {
		s.ttl = DefaultTicketTTL
	}
	switch s.binding {
	case "":
		s.binding = IPStrict
	case IPStrict, IPSubnet, IPOff:
	default:
		return nil, fmt.Errorf("authcore: unknown IP binding %q", s.binding)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s.dpop = DPoPVerifier{Replay: cfg.Store, MaxAge: cfg.DPoPMaxAge}
	s.hashes = newHashGate(cfg.PasswordHashers, cfg.PasswordWait, DefaultArgon2)
	s.common = commonPasswordSet()
	salt, key := make([]byte, DefaultArgon2.SaltLen), make([]byte, DefaultArgon2.KeyLen)
	_, _ = rand.Read(salt)
	_, _ = rand.Read(key)
	s.dummyHash = encodePHC(DefaultArgon2, salt, key)
	return s, nil
}

// NewTicketRequest is what a desktop asks for.
type NewTicketRequest struct {
	DPoPJKT   string     // RFC 7638 thumbprint; empty for no DPoP binding
	ClientIP  netip.Addr // the desktop's address (IP binding)
	UserAgent string
}

// NewTicket is a created ticket, as returned to the desktop.
type NewTicket struct {
	ID          string    `json:"id"`
	Ticket      string    `json:"ticket"`
	QRURL       string    `json:"qr_url"`
	WatchSecret string    `json:"watch_secret"`
	ExpiresAt   time.Time `json:"expires_at"`
	TTLSeconds  int       `json:"ttl_seconds"`
	Version     uint64    `json:"version"`
	State       State     `json:"state"`
}

// CreateTicket makes a pending ticket bound to the request's client address.
// Errors: KindInvalid for a malformed dpop_jkt.
func (s *Service) CreateTicket(ctx context.Context, req NewTicketRequest) (NewTicket, error) {
	if req.DPoPJKT != "" && !validThumbprint(req.DPoPJKT) {
		return NewTicket{}, Errorf(KindInvalid, "dpop_jkt must be an RFC 7638 SHA-256 thumbprint (43 base64url characters)")
	}
	now := s.now()
	exp := now.Add(s.ttl).Truncate(time.Second)
	id := NewTicketID()
	signed, err := s.signer.Sign(id, exp)
	if err != nil {
		return NewTicket{}, err
	}
	secret := randomToken("")
	rec := TicketRecord{
		ID: id, State: StatePending, Version: 1, Trail: []State{StatePending},
		ExpiresAt: exp, CreatedAt: now,
		WatchSecretHash: sha256.Sum256([]byte(secret)),
		DPoPJKT:         req.DPoPJKT,
		ClientIP:        req.ClientIP.Unmap(),
		Requester: Requester{
			IP:        req.ClientIP.Unmap().String(),
			Location:  coarseLocation(req.ClientIP),
			Device:    deviceFromUserAgent(req.UserAgent),
			UserAgent: truncate(req.UserAgent, 256),
			CreatedAt: now.UTC().Truncate(time.Second),
		},
	}
	if err := s.store.CreateTicket(ctx, rec, ticketRetention); err != nil {
		return NewTicket{}, fmt.Errorf("create ticket: %w", err)
	}
	return NewTicket{
		ID: id, Ticket: signed, QRURL: s.publicURL + "/s/" + signed,
		WatchSecret: secret, ExpiresAt: exp.UTC(), TTLSeconds: int(exp.Sub(now).Round(time.Second) / time.Second),
		Version: 1, State: StatePending,
	}, nil
}

func validThumbprint(s string) bool { return len(s) == 43 && URLSafe(s) }

// VerifyTicket checks a signed ticket without touching the store.
// Errors: KindUnauthorized (forged, malformed), KindExpired.
func (s *Service) VerifyTicket(signed string) (SignedTicket, error) {
	return s.signer.Verify(signed, s.now())
}

// View returns ticket id as of now. Errors: KindNotFound.
func (s *Service) View(ctx context.Context, id string) (View, error) {
	rec, err := s.ticket(ctx, id)
	if err != nil {
		return View{}, err
	}
	return rec.ViewAt(s.now()), nil
}

// AuthorizeWatch checks the watch secret and the IP binding for ticket id
// and returns its view. Errors: KindNotFound, KindUnauthorized (wrong
// secret), KindForbidden (wrong address).
func (s *Service) AuthorizeWatch(ctx context.Context, id, secret string, client netip.Addr) (View, error) {
	rec, err := s.authorizeDesktop(ctx, id, secret, client)
	if err != nil {
		return View{}, err
	}
	return rec.ViewAt(s.now()), nil
}

func (s *Service) authorizeDesktop(ctx context.Context, id, secret string, client netip.Addr) (TicketRecord, error) {
	if !plausibleTicketID(id) {
		return TicketRecord{}, Errorf(KindNotFound, "no such ticket")
	}
	rec, err := s.ticket(ctx, id)
	if err != nil {
		return TicketRecord{}, err
	}
	return rec, s.checkDesktop(rec, secret, client)
}

// checkDesktop checks that a desktop presenting secret from client may
// watch or redeem rec.
func (s *Service) checkDesktop(rec TicketRecord, secret string, client netip.Addr) error {
	h := sha256.Sum256([]byte(secret))
	if subtle.ConstantTimeCompare(h[:], rec.WatchSecretHash[:]) != 1 {
		return Errorf(KindUnauthorized, "wrong watch secret")
	}
	if !s.binding.Allows(rec.ClientIP, client) {
		return Errorf(KindForbidden, "this ticket belongs to another network address")
	}
	return nil
}

func plausibleTicketID(id string) bool { return len(id) == 16 && URLSafe(id) }

// plausibleUserID reports whether id can be a user id: the core makes
// "u_" + 16 URL-safe characters; stores and tests may use other short
// URL-safe ids.
func plausibleUserID(id string) bool { return id != "" && len(id) <= 64 && URLSafe(id) }

func (s *Service) ticket(ctx context.Context, id string) (TicketRecord, error) {
	rec, err := s.store.Ticket(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return TicketRecord{}, Errorf(KindNotFound, "no such ticket")
	}
	if err != nil {
		return TicketRecord{}, fmt.Errorf("read ticket: %w", err)
	}
	return rec, nil
}

// ScanResult is what the phone sees after scanning.
type ScanResult struct {
	ID        string    `json:"id"`
	State     State     `json:"state"`
	Version   uint64    `json:"version"`
	ExpiresAt time.Time `json:"expires_at"`
	Requester Requester `json:"requester"`
}

// Scan claims the ticket for the user of the phone's access token. The
// signature is checked before the store is touched; the token is resolved
// and the ticket claimed in one store call (TransitionAs). Scanning again
// by the same user returns the same result. Errors: KindInvalid (no
// ticket), KindUnauthorized (bad token, forged ticket), KindExpired,
// KindNotFound, KindConflict (another account scanned first).
func (s *Service) Scan(ctx context.Context, accessToken, signed string) (ScanResult, error) {
	if signed == "" {
		return ScanResult{}, s.tokenFirst(ctx, accessToken, Errorf(KindInvalid, "ticket is required"))
	}
	st, err := s.VerifyTicket(signed)
	if err != nil {
		return ScanResult{}, s.tokenFirst(ctx, accessToken, err)
	}
	// One store call: the store either claims the ticket or hands back what
	// it is, which says why not.
	now := s.now()
	res, err := s.phoneMove(ctx, accessToken, PhoneMove{ID: st.ID, From: StatePending, To: StateScanned, Now: now})
	if err != nil {
		return ScanResult{}, err
	}
	rec := res.Ticket
	v := rec.ViewAt(now)
	switch {
	case res.Moved:
		return scanResult(rec, v), nil
	case v.State == StateExpired:
		return ScanResult{}, Errorf(KindExpired, "this QR code has expired; refresh it on the computer")
	case rec.ScannerID == res.Principal.User.ID:
		return scanResult(rec, v), nil
	case rec.ScannerID != "":
		return ScanResult{}, Errorf(KindConflict, "another account already scanned this QR code")
	case v.State != StatePending:
		return ScanResult{}, Errorf(KindExpired, "this QR code can no longer be used")
	}
	return ScanResult{}, fmt.Errorf("scan %s: the store refused a pending ticket", st.ID)
}

// tokenFirst returns the error of accessToken if it does not authenticate,
// else err: a phone's call reports a bad token before anything else about
// the request, as it did when every call authenticated first.
func (s *Service) tokenFirst(ctx context.Context, accessToken string, err error) error {
	if _, aerr := s.Authenticate(ctx, accessToken); aerr != nil {
		return aerr
	}
	return err
}

// phoneMove authenticates accessToken and makes m as its user, in one
// store call, with the store's errors turned into domain ones.
func (s *Service) phoneMove(ctx context.Context, accessToken string, m PhoneMove) (PhoneMoveResult, error) {
	ref, ok := parseToken(accessToken, accessPrefix)
	if !ok {
		return PhoneMoveResult{}, ErrNoSession
	}
	res, err := s.store.TransitionAs(ctx, ref, AccessTokenTTL, m)
	switch {
	case err == nil:
		return res, nil
	case errors.Is(err, ErrNoSession):
		return PhoneMoveResult{}, ErrNoSession
	}
	return PhoneMoveResult{}, s.transitionError(string(m.To), err)
}

func scanResult(rec TicketRecord, v View) ScanResult {
	return ScanResult{ID: rec.ID, State: StateScanned, Version: versionOf(v, StateScanned), ExpiresAt: rec.ExpiresAt.UTC(), Requester: rec.Requester}
}

// versionOf returns the version at which v entered state, or v.Version.
func versionOf(v View, state State) uint64 {
	for i, st := range v.Trail {
		if st == state {
			return uint64(i + 1)
		}
	}
	return v.Version
}

func (s *Service) transitionError(op string, err error) error {
	switch {
	case errors.Is(err, ErrExpired):
		return Errorf(KindExpired, "this QR code has expired")
	case errors.Is(err, ErrNotFound):
		return Errorf(KindNotFound, "no such ticket")
	}
	return fmt.Errorf("%s: %w", op, err)
}

// PhoneResult is the phone's view after confirm or cancel.
type PhoneResult struct {
	ID      string `json:"id"`
	State   State  `json:"state"`
	Version uint64 `json:"version"`
}

// Confirm approves the login on the desktop, for the user of the phone's
// access token. Only the account that scanned may confirm; repeating it
// returns the same result. Errors: KindUnauthorized (bad token),
// KindNotFound, KindForbidden (another account), KindConflict (not scanned
// yet or cancelled), KindExpired.
func (s *Service) Confirm(ctx context.Context, accessToken, id string) (PhoneResult, error) {
	return s.phoneDecision(ctx, accessToken, id, StateConfirmed)
}

// Cancel refuses the login. Only the account that scanned may cancel;
// repeating it returns the same result. Errors as Confirm.
func (s *Service) Cancel(ctx context.Context, accessToken, id string) (PhoneResult, error) {
	return s.phoneDecision(ctx, accessToken, id, StateCancelled)
}

func (s *Service) phoneDecision(ctx context.Context, accessToken, id string, to State) (PhoneResult, error) {
	if !plausibleTicketID(id) {
		return PhoneResult{}, s.tokenFirst(ctx, accessToken, Errorf(KindNotFound, "no such ticket"))
	}
	// One store call, as in Scan.
	now := s.now()
	res, err := s.phoneMove(ctx, accessToken, PhoneMove{ID: id, From: StateScanned, To: to, Now: now})
	if err != nil {
		return PhoneResult{}, err
	}
	rec := res.Ticket
	if res.Moved {
		return PhoneResult{ID: id, State: to, Version: rec.Version}, nil
	}
	v := rec.ViewAt(now)
	if rec.ScannerID == "" {
		if v.State == StateExpired {
			return PhoneResult{}, Errorf(KindExpired, "this QR code has expired")
		}
		return PhoneResult{}, Errorf(KindConflict, "scan the QR code first")
	}
	if rec.ScannerID != res.Principal.User.ID {
		return PhoneResult{}, Errorf(KindForbidden, "another account scanned this QR code")
	}
	if done := versionOf(v, to); v.StateAt(done) == to {
		// Already decided this way: the same answer, not a duplicate.
		return PhoneResult{ID: id, State: to, Version: done}, nil
	}
	switch v.State {
	case StateExpired, StateRedeemed:
		return PhoneResult{}, Errorf(KindExpired, "this QR code can no longer be used")
	case StateScanned:
		return PhoneResult{}, fmt.Errorf("%s %s: the store refused a scanned ticket", to, id)
	default:
		return PhoneResult{}, Errorf(KindConflict, "the login was already %s", v.State)
	}
}

// RedeemRequest is the desktop's request to turn a confirmed ticket into a
// session.
type RedeemRequest struct {
	ID, Secret string
	Client     netip.Addr
	DPoPProof  string // the DPoP header, if any
	Method     string // HTTP method, for the DPoP htm check
	Path       string // request path; htu must equal PublicURL + Path
	UserAgent  string
	DeviceID   string // optional; 16-64 URL-safe characters
}

// Redeem consumes a confirmed ticket exactly once and returns a session for
// the user who confirmed it. A rejected redeem does not consume the ticket.
// Errors: KindNotFound, KindUnauthorized (secret or DPoP proof),
// KindForbidden (address), KindConflict (not confirmed yet), KindExpired
// (already redeemed, cancelled or expired).
func (s *Service) Redeem(ctx context.Context, req RedeemRequest) (Session, error) {
	client := Client{IP: req.Client, UserAgent: req.UserAgent, DeviceID: req.DeviceID}
	if err := checkClient(client); err != nil {
		return Session{}, err
	}
	rec, err := s.authorizeDesktop(ctx, req.ID, req.Secret, req.Client)
	if err != nil {
		return Session{}, err
	}
	if rec.DPoPJKT != "" {
		if req.DPoPProof == "" {
			return Session{}, Errorf(KindUnauthorized, "this ticket requires a DPoP proof")
		}
		if err := s.dpop.Verify(ctx, req.DPoPProof, req.Method, s.publicURL+req.Path, rec.DPoPJKT, s.now()); err != nil {
			return Session{}, err
		}
	}
	now := s.now()
	switch rec.ViewAt(now).State {
	case StateConfirmed:
	case StatePending, StateScanned:
		return Session{}, Errorf(KindConflict, "the login is not confirmed yet")
	default:
		return Session{}, Errorf(KindExpired, "this ticket was already used or has expired")
	}
	// The ticket moves only from the version checked above, so a ticket
	// that changed since (another redeem, its expiry) is refused whole.
	// A scan: no AuthTime, since the user authenticated on the phone, not
	// on this desktop, so its session does not pass the recent-login rule
	// of sensitive operations (RequireRecentLogin), however fresh the
	// scan. A provider login (Via): this very browser logged in at the
	// provider a moment ago; the session is that login's.
	facts := sessionFacts{AMR: []string{"wx", "qr"}, Method: MethodQR, Client: client}
	if rec.Via != "" {
		facts = sessionFacts{AMR: []string{rec.Via}, Method: rec.Via, Client: client, AuthTime: now}
	}
	srec, access, refresh := s.sessionRecord(rec.ScannerID, facts)
	u, err := s.store.RedeemTicket(ctx, Redemption{TicketID: rec.ID, FromVersion: rec.Version, Session: srec, Now: now})
	switch {
	case err == nil:
		s.recordLogin(ctx, s.attempt(u.ID, facts.Method, OutcomeOK, client))
		return issued(access, refresh, sessionUser(u, srec, facts.IsNew)), nil
	case errors.Is(err, ErrConflict) || errors.Is(err, ErrExpired):
		return Session{}, Errorf(KindExpired, "this ticket was already used or has expired")
	case errors.Is(err, ErrNotFound):
		// The user who confirmed erased their account (the ticket, read
		// just above, outlives its expiry by the retention), or the ticket
		// is gone.
		return Session{}, fmt.Errorf("redeem %s for user %s: %w", rec.ID, rec.ScannerID, err)
	}
	return Session{}, fmt.Errorf("redeem %s: %w", rec.ID, err)
}

func randomToken(prefix string) string {
	var b [32]byte
	rand.Read(b[:])
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// QRURL returns the URL drawn in ticket id's QR code. The signed ticket is a
// pure function of id, expiry and the active key, so it is re-derived rather
// than stored. Errors: KindNotFound, KindExpired.
func (s *Service) QRURL(ctx context.Context, id string) (string, error) {
	if !plausibleTicketID(id) {
		return "", Errorf(KindNotFound, "no such ticket")
	}
	rec, err := s.ticket(ctx, id)
	if err != nil {
		return "", err
	}
	if v := rec.ViewAt(s.now()); v.State.Terminal() {
		return "", Errorf(KindExpired, "this ticket is %s", v.State)
	}
	signed, err := s.signer.Sign(rec.ID, rec.ExpiresAt)
	if err != nil {
		return "", err
	}
	return s.publicURL + "/s/" + signed, nil
}
