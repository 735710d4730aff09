// Package kubetest gives tests a real Kubernetes API server (etcd and
// kube-apiserver, see internal/kubeapi): on loopback with a temporary
// data directory, RBAC authorization, an admin token (group
// system:masters) and a ServiceAccount token issuer. No controllers run.
//
// A test binary needs one server at most: call [Main] from TestMain and
// [Shared] from the tests that need the server; it starts on first use
// (a few seconds) and stops when the tests are done. [Start] gives a
// private server.
//
// The binaries come from the directory in CHAOSD_K8S_BIN_DIR (hack/test.sh
// sets it). Without them the tests that need a server skip, saying to run
// hack/k8s-bins.sh, unless CHAOSD_K8S_REQUIRED is set, as in CI: then they
// fail.
package kubetest

import (
	"context"

	"github.com/chaosd/chaosd/internal/kubeapi"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Server is a running etcd and kube-apiserver.
type Server = kubeapi.Server

// Options configure Start.
type Options = kubeapi.Options

// Environment variables the harness reads.
const (
	EnvBinDir   = kubeapi.EnvBinDir
	EnvRequired = kubeapi.EnvRequired
	EnvKeep     = kubeapi.EnvKeep
)

// Audience is the audience of ServiceAccount tokens.
const Audience = kubeapi.Audience

// ErrNoBinaries says the binaries are not where CHAOSD_K8S_BIN_DIR points.
var ErrNoBinaries = kubeapi.ErrNoBinaries

// Start starts a private server; the caller must Stop it.
func Start(ctx context.Context, opts Options) (*Server, error) { return kubeapi.Start(ctx, opts) }

// BinDir returns the directory holding kube-apiserver and etcd.
func BinDir() (string, error) { return kubeapi.BinDir() }

// Objects decodes the Kubernetes objects of a multi-document YAML file.
func Objects(data []byte) ([]*unstructured.Unstructured, error) { return kubeapi.Objects(data) }
