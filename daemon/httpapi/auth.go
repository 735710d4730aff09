package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"

	"github.com/chaosd/chaosd/internal/serve"
)

// Scope is what a credential may do. Each scope includes the ones below
// it: admin ⊃ adhoc ⊃ run ⊃ read.
type Scope int

// The scopes.
const (
	// ScopeRead: health, metrics, experiments, runs, timelines, agents,
	// skips (every GET).
	ScopeRead Scope = iota + 1
	// ScopeRun: start and abort runs of the library's experiments.
	ScopeRun
	// ScopeAdHoc: also start runs of ad hoc experiments, sent with the
	// request (chaosctl run -f FILE): whoever holds it decides what
	// faults go where, within what the agents allow.
	ScopeAdHoc
	// ScopeAdmin: halt, and everything else.
	ScopeAdmin
)

var scopeNames = map[Scope]string{ScopeRead: "read", ScopeRun: "run", ScopeAdHoc: "adhoc", ScopeAdmin: "admin"}

func (s Scope) String() string {
	if n, ok := scopeNames[s]; ok {
		return n
	}
	return fmt.Sprintf("scope(%d)", int(s))
}

// ParseScope parses "read", "run", "adhoc" or "admin".
func ParseScope(s string) (Scope, error) {
	for sc, n := range scopeNames {
		if n == s {
			return sc, nil
		}
	}
	return 0, fmt.Errorf("scope %q: want read, run, adhoc or admin", s)
}

// RequiredScope is the scope a request needs: admin for a halt, read
// for every GET (and HEAD), run for the other writes. A POST /v1/runs
// with an ad hoc spec also needs adhoc, checked once its body is read
// (see Handler).
func RequiredScope(r *http.Request) Scope {
	switch {
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		return ScopeRead
	case r.URL.Path == "/v1/halt":
		return ScopeAdmin
	default:
		return ScopeRun
	}
}

// Decision is an Authorizer's answer about one credential and scope.
type Decision struct {
	// Known: the credential identifies someone (else 401).
	Known bool
	// Allowed: they may use the scope asked (else 403).
	Allowed bool
	// Who names the holder in messages (never the secret itself).
	Who string
	// Reason, when not allowed, says why (e.g. what RBAC answered).
	Reason string
}

// Authorizer decides whether a bearer token may use a scope. An error
// means it could not decide (503), never a refusal.
type Authorizer interface {
	Authorize(ctx context.Context, token string, need Scope) (Decision, error)
}

// StaticTokens are tokens from files, each with its scope. The zero
// value knows no token.
type StaticTokens struct {
	entries []staticToken
}

type staticToken struct {
	sum   [32]byte
	scope Scope
	who   string
}

// Add adds a token with its scope; who names it in messages (e.g. the
// token's file).
func (s *StaticTokens) Add(token string, scope Scope, who string) {
	s.entries = append(s.entries, staticToken{sum: sha256.Sum256([]byte(token)), scope: scope, who: who})
}

// Len is the number of tokens.
func (s *StaticTokens) Len() int { return len(s.entries) }

// Authorize compares token with every known token in constant time.
func (s *StaticTokens) Authorize(_ context.Context, token string, need Scope) (Decision, error) {
	sum := sha256.Sum256([]byte(token))
	var d Decision
	var best Scope
	for _, e := range s.entries {
		if subtle.ConstantTimeCompare(sum[:], e.sum[:]) == 1 && e.scope > best {
			best, d.Known, d.Who = e.scope, true, e.who
		}
	}
	if d.Known {
		d.Allowed = best >= need
		if !d.Allowed {
			d.Reason = "its scope is " + best.String()
		}
	}
	return d, nil
}

// Chain asks each Authorizer in turn until one knows the token.
type Chain []Authorizer

// Authorize implements Authorizer.
func (c Chain) Authorize(ctx context.Context, token string, need Scope) (Decision, error) {
	for _, a := range c {
		d, err := a.Authorize(ctx, token, need)
		if err != nil || d.Known {
			return d, err
		}
	}
	return Decision{}, nil
}

// bearer returns the token of an "Authorization: Bearer TOKEN" header
// (the scheme's case does not matter, as for the agents).
func bearer(r *http.Request) (string, bool) {
	t, err := serve.Bearer(r.Header.Get("Authorization"))
	return t, err == nil && t != ""
}

// authorize requires a credential allowed the request's scope on every
// call: 401 without a known one, 403 naming the scope needed.
func authorize(az Authorizer, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if allowed(w, r, az, RequiredScope(r), "") {
			next.ServeHTTP(w, r)
		}
	})
}

// allowed asks az whether the request's credential may use need, and
// answers 401, 403 or 503 when not; what, when set, says what needs the
// scope in the message (else the method and path).
func allowed(w http.ResponseWriter, r *http.Request, az Authorizer, need Scope, what string) bool {
	tok, ok := bearer(r)
	var d Decision
	var err error
	if ok && az != nil {
		d, err = az.Authorize(r.Context(), tok, need)
	}
	if what == "" {
		what = r.Method + " " + r.URL.Path
	}
	switch {
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, "cannot check the credential: "+err.Error())
	case !d.Known:
		w.Header().Set("WWW-Authenticate", `Bearer realm="chaosd"`)
		writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
	case !d.Allowed:
		msg := fmt.Sprintf("forbidden: %s needs scope %q; %s may not", what, need.String(), d.Who)
		if d.Reason != "" {
			msg += " (" + d.Reason + ")"
		}
		writeError(w, http.StatusForbidden, msg)
	default:
		return true
	}
	return false
}
