package daemon

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/chaosd/chaosd/daemon/httpapi"
)

// What RBAC is asked for each scope: a verb on the virtual subresource
// experimentruns/api of chaosd.io in chaosd's namespace
// (manifests/base/rbac-users.yaml has the roles). The API server has no
// such subresource, so these grants give nothing there: a runner cannot
// write run records (the ExperimentRun objects) behind chaosd's back.
const (
	authGroup       = "chaosd.io"
	authResource    = "experimentruns"
	authSubresource = "api"
	// VerbHalt is the custom RBAC verb of scope admin.
	VerbHalt = "halt"
	// VerbAdHoc is the custom RBAC verb of scope adhoc: running
	// experiments sent with the request rather than the Experiment
	// objects of chaosd's namespace.
	VerbAdHoc = "adhoc"
)

// ScopeVerb is the RBAC verb a Kubernetes identity needs for a scope.
func ScopeVerb(s httpapi.Scope) string {
	switch s {
	case httpapi.ScopeRead:
		return "get"
	case httpapi.ScopeRun:
		return "create"
	case httpapi.ScopeAdHoc:
		return VerbAdHoc
	default:
		return VerbHalt
	}
}

// kubeAuth authenticates bearer tokens with a TokenReview and authorizes
// each scope with a SubjectAccessReview; answers are cached for
// kubeAuthTTL so a scrape or a polling chaosctl costs no API call each.
type kubeAuth struct {
	client    kubernetes.Interface
	namespace string
	lg        *zap.Logger

	mu    sync.Mutex
	cache map[[32]byte]cachedDecision
}

type cachedDecision struct {
	d   httpapi.Decision
	exp time.Time
}

const (
	kubeAuthTTL      = 10 * time.Second
	kubeAuthMaxCache = 4096
	kubeAuthTimeout  = 5 * time.Second
)

func newKubeAuth(client kubernetes.Interface, namespace string, lg *zap.Logger) *kubeAuth {
	return &kubeAuth{client: client, namespace: namespace, lg: lg, cache: map[[32]byte]cachedDecision{}}
}

// Authorize implements httpapi.Authorizer.
func (k *kubeAuth) Authorize(ctx context.Context, token string, need httpapi.Scope) (httpapi.Decision, error) {
	key := sha256.Sum256(fmt.Appendf(nil, "%d\x00%s", need, token))
	now := time.Now()
	k.mu.Lock()
	if c, ok := k.cache[key]; ok && now.Before(c.exp) {
		k.mu.Unlock()
		return c.d, nil
	}
	k.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, kubeAuthTimeout)
	defer cancel()
	d, err := k.review(ctx, token, need)
	if err != nil {
		return d, err
	}
	k.mu.Lock()
	if len(k.cache) >= kubeAuthMaxCache {
		clear(k.cache)
	}
	k.cache[key] = cachedDecision{d: d, exp: now.Add(kubeAuthTTL)}
	k.mu.Unlock()
	return d, nil
}

func (k *kubeAuth) review(ctx context.Context, token string, need httpapi.Scope) (httpapi.Decision, error) {
	tr, err := k.client.AuthenticationV1().TokenReviews().Create(ctx, &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
	if err != nil {
		return httpapi.Decision{}, fmt.Errorf("TokenReview: %w", err)
	}
	if !tr.Status.Authenticated {
		return httpapi.Decision{}, nil
	}
	u := tr.Status.User
	extra := map[string]authzv1.ExtraValue{}
	for key, v := range u.Extra {
		extra[key] = authzv1.ExtraValue(v)
	}
	verb := ScopeVerb(need)
	sar, err := k.client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
		User: u.Username, UID: u.UID, Groups: u.Groups, Extra: extra,
		ResourceAttributes: &authzv1.ResourceAttributes{Namespace: k.namespace, Group: authGroup, Resource: authResource, Subresource: authSubresource, Verb: verb},
	}}, metav1.CreateOptions{})
	if err != nil {
		return httpapi.Decision{}, fmt.Errorf("SubjectAccessReview: %w", err)
	}
	d := httpapi.Decision{Known: true, Allowed: sar.Status.Allowed, Who: "Kubernetes user " + u.Username}
	if !d.Allowed {
		d.Reason = fmt.Sprintf("RBAC: no %q on %s/%s (group %s) in namespace %s", verb, authResource, authSubresource, authGroup, k.namespace)
		if sar.Status.Reason != "" {
			d.Reason += ": " + sar.Status.Reason
		}
	}
	k.lg.Debug("kubernetes identity", zap.String("user", u.Username), zap.String("scope", need.String()), zap.Bool("allowed", d.Allowed))
	return d, nil
}
