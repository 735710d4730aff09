// Package kubepodtest builds fake Kubernetes pods for privileged tests of
// the agent (Linux only; see kubepodtest.go).
package kubepodtest
