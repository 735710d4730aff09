package kubeapi

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"
)

// InstallCRDs creates (or updates) the CustomResourceDefinitions and waits
// until each is Established. A definition already installed unchanged by
// this Server is skipped, so tests sharing a server can each call it:
// install CRDs once per server, since a custom object created within 2s of
// its CRD becoming Established waits those 2s on the server.
func (s *Server) InstallCRDs(ctx context.Context, crds ...*apiextensionsv1.CustomResourceDefinition) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := apiextensionsclient.NewForConfig(s.config)
	if err != nil {
		return err
	}
	api := c.ApiextensionsV1().CustomResourceDefinitions()
	installed := false
	for _, crd := range crds {
		b, err := json.Marshal(crd.Spec)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		hash := hex.EncodeToString(sum[:])
		if s.crds[crd.Name] == hash {
			continue
		}
		want := crd.DeepCopy()
		want.ResourceVersion = ""
		if _, err := api.Create(ctx, want, metav1.CreateOptions{}); apierrors.IsAlreadyExists(err) {
			cur, gerr := api.Get(ctx, crd.Name, metav1.GetOptions{})
			if gerr != nil {
				return fmt.Errorf("get CRD %s: %w", crd.Name, gerr)
			}
			cur.Spec = want.Spec
			cur.Labels = want.Labels
			_, err = api.Update(ctx, cur, metav1.UpdateOptions{})
		}
		if err != nil {
			return fmt.Errorf("install CRD %s: %w", crd.Name, err)
		}
		err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			cur, err := api.Get(ctx, crd.Name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			for _, cond := range cur.Status.Conditions {
				if cond.Type == apiextensionsv1.NamesAccepted && cond.Status == apiextensionsv1.ConditionFalse {
					return false, fmt.Errorf("names not accepted: %s", cond.Message)
				}
				if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("wait for CRD %s to be Established: %w", crd.Name, err)
		}
		s.crds[crd.Name] = hash
		installed = true
	}
	if installed && s.mapper != nil {
		s.mapper.Reset()
	}
	return nil
}

// Dynamic returns a dynamic client for cfg (the admin's when nil).
func (s *Server) Dynamic(cfg *rest.Config) (dynamic.Interface, error) {
	if cfg == nil {
		return s.dynamic, nil
	}
	return dynamic.NewForConfig(cfg)
}

// Create creates obj as the admin (with opts, e.g. a server-side dry run:
// DryRun: []string{metav1.DryRunAll}), finding its resource through
// discovery.
func (s *Server) Create(ctx context.Context, obj *unstructured.Unstructured, opts metav1.CreateOptions) (*unstructured.Unstructured, error) {
	r, err := s.resource(obj)
	if err != nil {
		return nil, err
	}
	return r.Create(ctx, obj, opts)
}

// Apply applies obj as the admin with a server-side apply (what
// `kubectl apply --server-side` does; opts.FieldManager defaults to
// "kubetest"; DryRun: []string{metav1.DryRunAll} for a server-side dry
// run). Unlike Create it works whether or not the object exists.
func (s *Server) Apply(ctx context.Context, obj *unstructured.Unstructured, opts metav1.ApplyOptions) (*unstructured.Unstructured, error) {
	r, err := s.resource(obj)
	if err != nil {
		return nil, err
	}
	if opts.FieldManager == "" {
		opts.FieldManager = "kubetest"
	}
	return r.Apply(ctx, obj.GetName(), obj, opts)
}

// resource returns the dynamic client of obj's resource (and namespace).
func (s *Server) resource(obj *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	m, err := s.mapping(obj)
	if err != nil {
		return nil, err
	}
	d, err := s.Dynamic(nil)
	if err != nil {
		return nil, err
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return d.Resource(m.Resource).Namespace(obj.GetNamespace()), nil
	}
	return d.Resource(m.Resource), nil
}

// mapping finds the resource of an object's kind, refreshing discovery
// once when the kind is not known yet (a CRD installed since).
func (s *Server) mapping(obj *unstructured.Unstructured) (*meta.RESTMapping, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mapper == nil {
		dc, err := discovery.NewDiscoveryClientForConfig(s.config)
		if err != nil {
			return nil, err
		}
		s.mapper = restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	}
	gvk := obj.GroupVersionKind()
	m, err := s.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		s.mapper.Reset()
		m, err = s.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		return nil, fmt.Errorf("find the resource of %s: %w", gvk, err)
	}
	return m, nil
}

// Objects decodes the Kubernetes objects of a multi-document YAML (or
// JSON) file; empty documents are skipped.
func Objects(data []byte) ([]*unstructured.Unstructured, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out []*unstructured.Unstructured
	for i := 0; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if m == nil {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.GetKind() == "" || u.GetAPIVersion() == "" {
			return nil, fmt.Errorf("document %d: not a Kubernetes object (no apiVersion or kind)", i)
		}
		out = append(out, u)
	}
}
