// Package manifests holds the Kubernetes manifests (kustomize base and
// the c1/c2 overlays), the Prometheus rules and the Grafana dashboard.
// The only Go in it embeds the Prometheus rules, so the local lab's
// Prometheus evaluates exactly the file shipped here.
package manifests

import _ "embed"

// chaosdRules is read-only data fixed at build time (go:embed needs a
// package-level variable), not mutable state.
//
//go:embed prometheus/chaosd-rules.yaml
var chaosdRules []byte

// ChaosdRulesFile is the rules file's name.
const ChaosdRulesFile = "chaosd-rules.yaml"

// ChaosdRules returns prometheus/chaosd-rules.yaml.
func ChaosdRules() []byte { return append([]byte(nil), chaosdRules...) }
