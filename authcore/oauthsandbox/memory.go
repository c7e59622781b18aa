package oauthsandbox

import (
	"context"
	"sync"
	"time"
)

// memState is the State a fake keeps in its own memory.
type memState struct {
	mu      sync.Mutex
	secrets map[string]string
	codes   map[string]*memCode
	tokens  map[string]Grant
	sweepAt int // sweep when len(codes)+len(tokens) reaches this
}

type memCode struct {
	g    Grant
	used bool
}

var _ State = (*memState)(nil)

// NewMemoryState returns a State in memory, the one a fake keeps when it
// is given none. It forgets codes and tokens Retention after they expire,
// so that its size follows the live ones.
func NewMemoryState() State {
	return &memState{
		secrets: make(map[string]string),
		codes:   make(map[string]*memCode),
		tokens:  make(map[string]Grant),
		sweepAt: 1024,
	}
}

func (m *memState) AppSecret(_ context.Context, app, candidate string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.secrets[app]; ok {
		return s, nil
	}
	m.secrets[app] = candidate
	return candidate, nil
}

func (m *memState) IssueCode(_ context.Context, code string, g Grant) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.codes[code] = &memCode{g: g}
	m.sweepLocked()
	return nil
}

func (m *memState) UseCode(_ context.Context, code string, now time.Time) (Grant, CodeStatus, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.codes[code]
	switch {
	case !ok:
		return Grant{}, CodeUnknown, nil
	case c.used:
		return c.g, CodeUsed, nil
	case c.g.Expired(now):
		return c.g, CodeExpired, nil
	}
	c.used = true
	return c.g, CodeOK, nil
}

func (m *memState) IssueToken(_ context.Context, token string, g Grant) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tokens[token] = g
	m.sweepLocked()
	return nil
}

func (m *memState) Token(_ context.Context, token string) (Grant, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	g, ok := m.tokens[token]
	return g, ok, nil
}

// sweepLocked forgets what expired more than Retention ago, when the maps
// have doubled since the last sweep: O(1) amortized per issue.
func (m *memState) sweepLocked() {
	if len(m.codes)+len(m.tokens) < m.sweepAt {
		return
	}
	cutoff := time.Now().Add(-Retention)
	for k, c := range m.codes {
		if c.g.Expires.Before(cutoff) {
			delete(m.codes, k)
		}
	}
	for k, g := range m.tokens {
		if g.Expires.Before(cutoff) {
			delete(m.tokens, k)
		}
	}
	m.sweepAt = max(1024, 2*(len(m.codes)+len(m.tokens)))
}
