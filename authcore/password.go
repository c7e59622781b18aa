package authcore

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/subtle"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Passwords, from the API contract.
const (
	MinPasswordRunes   = 8
	MaxPasswordBytes   = 256 // a bound on what is hashed, far above any password people type
	MinUsernameLen     = 3
	MaxUsernameLen     = 32
	PasswordFailures   = 5  // failures per user (or unknown login) that lock its password login
	PasswordAddrFails  = 30 // failures per client address that lock its password logins
	PasswordFailWindow = 15 * time.Minute
	PasswordLockFor    = 15 * time.Minute
)

// Argon2Params are argon2id's cost parameters.
type Argon2Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
	KeyLen  uint32
	SaltLen uint32
}

// DefaultArgon2 is OWASP's first recommended argon2id configuration (m=19 MiB,
// t=2, p=1): the RFC 9106 second recommendation (m=64 MiB, t=3, p=4) costs
// 64 MiB and four threads per hash, which on a two-core node bounds
// concurrent logins at a third as many for the same memory ceiling, for a
// margin an online-guessing limit (5 failures per user per 15 minutes)
// does not need. Hashes name their parameters (PHC strings), so stored
// ones keep verifying after a change.
var DefaultArgon2 = Argon2Params{Memory: 19 * 1024, Time: 2, Threads: 1, KeyLen: 32, SaltLen: 16}

// DefaultPasswordWait is how long a password check waits for a hashing slot
// before it gives up with KindUpstreamUnavailable.
const DefaultPasswordWait = 3 * time.Second

// hashGate bounds how many argon2id computations run at once, so that a
// burst of password logins cannot take more than slots × Memory KiB. By
// default it leaves one processor free of hashing: a hash runs for tens of
// milliseconds without blocking, and with every processor hashing the
// requests and WebSocket writes of other logins wait for the scheduler to
// preempt one (docs/BENCHMARKS.md has the burst measured both ways).
type hashGate struct {
	slots  chan struct{}
	wait   time.Duration
	params Argon2Params
	// key is argon2.IDKey; tests replace it to count concurrent entries.
	key func(password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte
}

func newHashGate(n int, wait time.Duration, p Argon2Params) *hashGate {
	if n <= 0 {
		n = max(1, runtime.GOMAXPROCS(0)-1)
	}
	if wait <= 0 {
		wait = DefaultPasswordWait
	}
	return &hashGate{slots: make(chan struct{}, n), wait: wait, params: p, key: argon2.IDKey}
}

var errHashBusy = &Error{Kind: KindUpstreamUnavailable, RetryAfter: time.Second,
	Message: "too many password checks at once; try again in a moment"}

// run calls f holding a slot, or returns errHashBusy after waiting g.wait.
func (g *hashGate) run(ctx context.Context, f func()) error {
	t := time.NewTimer(g.wait)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
	case <-t.C:
		return errHashBusy
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-g.slots }()
	f()
	return nil
}

// hash returns the PHC string of password with a fresh salt.
func (g *hashGate) hash(ctx context.Context, password string) (string, error) {
	p := g.params
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password salt: %w", err)
	}
	var key []byte
	if err := g.run(ctx, func() { key = g.key([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen) }); err != nil {
		return "", err
	}
	return encodePHC(p, salt, key), nil
}

// verify reports whether password matches the PHC string phc.
func (g *hashGate) verify(ctx context.Context, phc, password string) (bool, error) {
	p, salt, want, err := decodePHC(phc)
	if err != nil {
		return false, err
	}
	var got []byte
	if err := g.run(ctx, func() { got = g.key([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen) }); err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

var phcB64 = base64.RawStdEncoding

// encodePHC writes the standard PHC string of an argon2id hash:
// $argon2id$v=19$m=<KiB>,t=<passes>,p=<threads>$<salt>$<hash> (unpadded base64).
func encodePHC(p Argon2Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, phcB64.EncodeToString(salt), phcB64.EncodeToString(key))
}

// decodePHC parses what encodePHC writes, within bounds that keep a
// corrupt record from costing more than the strongest sane setting.
func decodePHC(s string) (Argon2Params, []byte, []byte, error) {
	bad := errors.New("password hash: not an argon2id PHC string")
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return Argon2Params{}, nil, nil, bad
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return Argon2Params{}, nil, nil, bad
	}
	var p Argon2Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return Argon2Params{}, nil, nil, bad
	}
	if p.Memory < 8 || p.Memory > 1<<20 || p.Time < 1 || p.Time > 16 || p.Threads < 1 || p.Threads > 16 {
		return Argon2Params{}, nil, nil, bad
	}
	salt, err1 := phcB64.DecodeString(parts[4])
	key, err2 := phcB64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(key) < 16 || len(key) > 64 {
		return Argon2Params{}, nil, nil, bad
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	return p, salt, key, nil
}

// commonPasswords.txt: see its first lines for where it comes from.
//
//go:embed commonpasswords.txt
var commonPasswordsText string

// commonPasswordSet reads the embedded list: one password a line, "#"
// lines are comments; matching ignores case.
func commonPasswordSet() map[string]struct{} {
	set := map[string]struct{}{}
	sc := bufio.NewScanner(strings.NewReader(commonPasswordsText))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		set[strings.ToLower(line)] = struct{}{}
	}
	return set
}

// checkNewPassword applies the contract's rules; the message names the
// rule broken. Errors: KindInvalid.
func (s *Service) checkNewPassword(pw string) error {
	switch {
	case pw == "":
		return Errorf(KindInvalid, "password is required")
	case !utf8.ValidString(pw):
		return Errorf(KindInvalid, "password must be UTF-8 text")
	case len(pw) > MaxPasswordBytes:
		return Errorf(KindInvalid, "password must be at most %d bytes", MaxPasswordBytes)
	case utf8.RuneCountInString(pw) < MinPasswordRunes:
		return Errorf(KindInvalid, "password must be at least %d characters", MinPasswordRunes)
	}
	if _, common := s.common[strings.ToLower(pw)]; common {
		return Errorf(KindInvalid, "password is too common (it is on lists of the most used passwords); choose another")
	}
	return nil
}

// ValidUsername reports whether name is a username: 3-32 of a-z 0-9 _ . -,
// and not something NormalizePhone takes (a login names a phone number or
// a username, never both).
func ValidUsername(name string) bool {
	if len(name) < MinUsernameLen || len(name) > MaxUsernameLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	_, err := NormalizePhone(name)
	return err != nil
}

// ProviderPassword is the provider of username identities.
const ProviderPassword = "password"

// SetUsername makes name p's user's username (its password identity),
// replacing the one it had: the old name stops logging in and is free for
// others. Setting the same name again does nothing; a name another user
// holds is KindConflict. Errors: KindInvalid, KindConflict, KindUnauthorized
// (the user is gone).
func (s *Service) SetUsername(ctx context.Context, p Principal, name string) error {
	if !ValidUsername(name) {
		return Errorf(KindInvalid, "username must be %d-%d of a-z 0-9 _ . - and not a phone number", MinUsernameLen, MaxUsernameLen)
	}
	err := s.store.LinkIdentity(ctx, Identity{Provider: ProviderPassword, Subject: name}, p.User.ID)
	switch {
	case errors.Is(err, ErrConflict):
		return Errorf(KindConflict, "username %q is taken", name)
	case errors.Is(err, ErrNotFound):
		return ErrNoSession
	case err != nil:
		return fmt.Errorf("set username: %w", err)
	}
	// The new name is linked first, so the user never has no way to log in.
	ids, err := s.store.Identities(ctx, p.User.ID)
	if err != nil {
		return fmt.Errorf("set username: %w", err)
	}
	for _, id := range ids {
		if id.Provider == ProviderPassword && id.Subject != name {
			if err := s.store.UnlinkIdentity(ctx, id.Identity, p.User.ID); err != nil && !errors.Is(err, ErrNotFound) {
				return fmt.Errorf("set username: drop the old one: %w", err)
			}
		}
	}
	return nil
}

// SetPasswordRequest is a user's new password, and the current one when
// one is set.
type SetPasswordRequest struct {
	Password, CurrentPassword string
}

// SetPassword sets p's user's password (argon2id) and revokes the user's
// other sessions. Replacing a password needs the current one and a recent
// login (RequireRecentLogin); a wrong current password counts as a failed
// password login of the user. Errors: KindInvalid (the rule broken, or
// current_password missing), KindStepUpRequired, KindUnauthorized (wrong
// current password), KindRateLimited (the user's password login is
// locked), KindConflict (changed meanwhile), KindUpstreamUnavailable (too
// many hashes at once).
func (s *Service) SetPassword(ctx context.Context, p Principal, req SetPasswordRequest) error {
	if s.limiter == nil {
		return errPasswordDisabled
	}
	if err := s.checkNewPassword(req.Password); err != nil {
		return err
	}
	old, err := s.store.PasswordHash(ctx, p.User.ID)
	switch {
	case errors.Is(err, ErrNotFound):
		old = ""
	case err != nil:
		return fmt.Errorf("set password: %w", err)
	}
	if old != "" {
		if err := s.RequireRecentLogin(p); err != nil {
			return err
		}
		if req.CurrentPassword == "" {
			return Errorf(KindInvalid, "current_password is required to replace a password")
		}
		userKey := "pwd:u:" + p.User.ID
		if err := s.passwordLocked(ctx, userKey); err != nil {
			return err
		}
		ok, err := s.hashes.verify(ctx, old, req.CurrentPassword)
		if err != nil {
			return fmt.Errorf("set password: %w", err)
		}
		if !ok {
			if err := s.passwordFailed(ctx, userKey, PasswordFailures); err != nil {
				return err
			}
			return Errorf(KindUnauthorized, "current_password is wrong")
		}
	}
	phc, err := s.hashes.hash(ctx, req.Password)
	if err != nil {
		return err
	}
	others := s.sessionFamilies(ctx, p.User.ID, p.Session.FamilyID)
	err = s.store.SetPassword(ctx, PasswordChange{UserID: p.User.ID, Old: old, New: phc, KeepFamily: p.Session.FamilyID})
	switch {
	case errors.Is(err, ErrConflict):
		return Errorf(KindConflict, "the password was changed meanwhile; try again")
	case errors.Is(err, ErrNotFound):
		return ErrNoSession
	case err != nil:
		return fmt.Errorf("set password: %w", err)
	}
	s.revokeGrants(ctx, p.User.ID, others...)
	s.log.InfoContext(ctx, "password set; other sessions revoked", slog.String("user", p.User.ID))
	return nil
}

var errPasswordDisabled = Errorf(KindNotFound, "password login is not enabled on this hub")

// PasswordLoginRequest is a login with a username or phone number and a
// password.
type PasswordLoginRequest struct {
	Login, Password string
	Client          Client // its IP for the per-address limit too
}

// errBadLogin is the one answer to an unknown login, a user without a
// password and a wrong password.
var errBadLogin = Errorf(KindUnauthorized, "wrong login or password")

// PasswordLogin checks a password and returns a session (amr ["pwd"]) of
// the user whose username or phone number Login names. An unknown login,
// a user without a password and a wrong password give the same
// KindUnauthorized after the same work: the password is checked against a
// dummy hash when there is no real one, and an unknown login counts
// failures as a user would. PasswordFailures failures of one user (or
// unknown login) in PasswordFailWindow lock its password login for
// PasswordLockFor; PasswordAddrFails failures from one client address do
// the same to the address (counted in the store, so across nodes).
// Risk control may step the login up (judgeLogin). Errors: KindInvalid,
// KindUnauthorized, KindStepUpRequired, KindRateLimited,
// KindUpstreamUnavailable (too many hashes at once).
func (s *Service) PasswordLogin(ctx context.Context, req PasswordLoginRequest) (Session, error) {
	if s.limiter == nil {
		return Session{}, errPasswordDisabled
	}
	switch {
	case req.Login == "":
		return Session{}, Errorf(KindInvalid, "login is required: a username or a phone number")
	case len(req.Login) > 64:
		return Session{}, Errorf(KindInvalid, "login must be a username or a phone number")
	case req.Password == "":
		return Session{}, Errorf(KindInvalid, "password is required")
	case len(req.Password) > MaxPasswordBytes:
		return Session{}, Errorf(KindInvalid, "password must be at most %d bytes", MaxPasswordBytes)
	}
	if err := checkClient(req.Client); err != nil {
		return Session{}, err
	}
	addrKey := "pwd:a:" + clientKey(req.Client.IP)
	if err := s.passwordLocked(ctx, addrKey); err != nil {
		return Session{}, err
	}
	var id Identity
	if phone, err := NormalizePhone(req.Login); err == nil {
		id = Identity{Provider: ProviderPhone, Subject: phone}
	} else {
		id = Identity{Provider: ProviderPassword, Subject: strings.ToLower(req.Login)}
	}
	// The failure key of a known user is the user, whichever way it was
	// named; an unknown login locks as a user would, so that a lock tells
	// nobody whether a login exists.
	userKey, phc := "pwd:l:"+id.Provider+":"+id.Subject, s.dummyHash
	u, err := s.store.UserByIdentity(ctx, id)
	switch {
	case err == nil:
		userKey = "pwd:u:" + u.ID
		h, err := s.store.PasswordHash(ctx, u.ID)
		switch {
		case err == nil:
			phc = h
		case !errors.Is(err, ErrNotFound):
			return Session{}, fmt.Errorf("password login: %w", err)
		}
	case !errors.Is(err, ErrNotFound):
		return Session{}, fmt.Errorf("password login: %w", err)
	}
	if err := s.passwordLocked(ctx, userKey); err != nil {
		return Session{}, err
	}
	ok, err := s.hashes.verify(ctx, phc, req.Password)
	if err != nil {
		return Session{}, fmt.Errorf("password login: %w", err)
	}
	if !ok || phc == s.dummyHash {
		if err := s.passwordFailed(ctx, userKey, PasswordFailures); err != nil {
			return Session{}, err
		}
		if err := s.passwordFailed(ctx, addrKey, PasswordAddrFails); err != nil {
			return Session{}, err
		}
		if u.ID != "" {
			s.recordLogin(ctx, s.attempt(u.ID, MethodPwd, OutcomeFailed, req.Client))
		}
		s.log.InfoContext(ctx, "password login refused", slog.String("provider", id.Provider))
		return Session{}, errBadLogin
	}
	f := sessionFacts{AMR: []string{"pwd"}, Identity: id, AuthTime: s.now(), Method: MethodPwd, Client: req.Client}
	if err := s.judgeLogin(ctx, u, false, f); err != nil {
		return Session{}, err
	}
	sess, _, err := s.newSession(ctx, u, f)
	return sess, err
}

// passwordLocked returns KindRateLimited while key's password login is
// locked.
func (s *Service) passwordLocked(ctx context.Context, key string) error {
	retry, err := s.limiter.Limited(ctx, key+":lock", 1)
	if err != nil {
		return fmt.Errorf("password limits: %w", err)
	}
	if retry > 0 {
		return &Error{Kind: KindRateLimited, RetryAfter: retry,
			Message: "too many wrong passwords; password login is locked for a while"}
	}
	return nil
}

// passwordFailed counts one failure of key; the limit-th in a window locks
// key for PasswordLockFor.
func (s *Service) passwordFailed(ctx context.Context, key string, limit int) error {
	ok, _, err := s.limiter.Allow(ctx, key+":fail", limit-1, PasswordFailWindow)
	if err != nil {
		return fmt.Errorf("password limits: %w", err)
	}
	if !ok {
		if _, _, err := s.limiter.Allow(ctx, key+":lock", 1, PasswordLockFor); err != nil {
			return fmt.Errorf("password limits: %w", err)
		}
	}
	return nil
}
