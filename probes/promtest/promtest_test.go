package promtest

import (
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestConfig(t *testing.T) {
	got := string(config(Options{Targets: []string{"127.0.0.1:1", "127.0.0.1:2"}, ScrapeInterval: 2e9}))
	for _, want := range []string{"scrape_interval: 2s", "scrape_timeout: 2s", `targets: ["127.0.0.1:1", "127.0.0.1:2"]`} {
		if !strings.Contains(got, want) {
			t.Errorf("config missing %q:\n%s", want, got)
		}
	}
}
