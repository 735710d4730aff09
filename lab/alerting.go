package lab

import (
	"context"
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/chaosd/chaosd/lab/alertsink"
	"github.com/chaosd/chaosd/manifests"
)

// DefaultAlertmanager is Debian's Alertmanager (package
// prometheus-alertmanager).
const DefaultAlertmanager = "/usr/bin/prometheus-alertmanager"

// petclinicAlerts is read-only data fixed at build time (go:embed needs a
// package-level variable), not mutable state.
//
//go:embed prometheus/petclinic-alerts.yaml
var petclinicAlerts []byte

// PetClinicAlertsFile is the name of the lab's PetClinic SLO alert rules
// (lab/prometheus/petclinic-alerts.yaml).
const PetClinicAlertsFile = "petclinic-alerts.yaml"

// ruleFiles are the rule files the lab's Prometheus evaluates, by file
// name: the shipped chaosd rules unchanged and the lab's PetClinic alerts.
func ruleFiles() map[string][]byte {
	return map[string][]byte{
		manifests.ChaosdRulesFile: manifests.ChaosdRules(),
		PetClinicAlertsFile:       append([]byte(nil), petclinicAlerts...),
	}
}

// The lab's Alertmanager routing: one route to the webhook sink, fast
// enough for tests (a new group is sent after GroupWait, changes to it
// after GroupInterval) and never repeated within a lab's life.
const (
	AlertGroupWait      = "1s"
	AlertGroupInterval  = "1s"
	AlertRepeatInterval = "12h"
	// AlertReceiver is the name of the lab's only receiver.
	AlertReceiver = "lab-webhook"
)

type amWebhookConfig struct {
	URL          string `yaml:"url"`
	SendResolved bool   `yaml:"send_resolved"`
}

type amReceiver struct {
	Name           string            `yaml:"name"`
	WebhookConfigs []amWebhookConfig `yaml:"webhook_configs"`
}

type amRoute struct {
	Receiver       string   `yaml:"receiver"`
	GroupBy        []string `yaml:"group_by"`
	GroupWait      string   `yaml:"group_wait"`
	GroupInterval  string   `yaml:"group_interval"`
	RepeatInterval string   `yaml:"repeat_interval"`
}

type amConfig struct {
	Route     amRoute      `yaml:"route"`
	Receivers []amReceiver `yaml:"receivers"`
}

// alertmanagerConfig routes every alert, grouped by name, to the sink at
// webhookURL, resolved ones too.
func alertmanagerConfig(webhookURL string) ([]byte, error) {
	c := amConfig{
		Route: amRoute{Receiver: AlertReceiver, GroupBy: []string{"alertname"},
			GroupWait: AlertGroupWait, GroupInterval: AlertGroupInterval, RepeatInterval: AlertRepeatInterval},
		Receivers: []amReceiver{{Name: AlertReceiver, WebhookConfigs: []amWebhookConfig{{URL: webhookURL, SendResolved: true}}}},
	}
	return yaml.Marshal(c)
}

// sortedRuleFileNames are the names of ruleFiles, sorted.
func sortedRuleFileNames() []string {
	var names []string
	for n := range ruleFiles() {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// writeRuleFiles copies the rule files to l.RuleFiles (in the state
// directory), where the lab's Prometheus reads them.
func (l *Lab) writeRuleFiles() error {
	if err := os.MkdirAll(l.path("rules"), 0o700); err != nil {
		return fmt.Errorf("create rules dir: %w", err)
	}
	files := ruleFiles()
	for _, p := range l.RuleFiles {
		if err := os.WriteFile(p, files[filepath.Base(p)], 0o600); err != nil {
			return fmt.Errorf("write rule file: %w", err)
		}
	}
	return nil
}

// startAlerting starts the webhook sink and Alertmanager in the mgmt
// namespace and waits until both answer.
func (l *Lab) startAlerting(ctx context.Context) error {
	sinkAddr := fmt.Sprintf("%s:%d", MgmtIP, AlertSinkPort)
	if err := l.start("alertsink", RoleMgmt, []string{filepath.Join(l.BinDir, "alertsink"),
		"--listen", sinkAddr, "--file", l.AlertsFile}); err != nil {
		return err
	}
	conf, err := alertmanagerConfig(l.alertSinkURL())
	if err != nil {
		return fmt.Errorf("render alertmanager config: %w", err)
	}
	confPath := l.path("alertmanager.yml")
	if err := os.WriteFile(confPath, conf, 0o600); err != nil {
		return fmt.Errorf("write alertmanager config: %w", err)
	}
	argv := []string{l.cfg.Alertmanager, "--config.file=" + confPath, "--storage.path=" + l.path("alertmanager"),
		fmt.Sprintf("--web.listen-address=%s:%d", MgmtIP, AlertmanagerPort), "--web.external-url=" + l.AlertmanagerURL,
		// A single Alertmanager: no gossip listener, no peers.
		"--cluster.listen-address="}
	if err := l.start("alertmanager", RoleMgmt, argv); err != nil {
		return err
	}
	client := l.HTTPClient(2 * time.Second)
	if err := l.waitFor(ctx, "alert sink", func() error {
		return httpOK(ctx, client, fmt.Sprintf("http://%s/healthz", sinkAddr), "", "ok")
	}); err != nil {
		return err
	}
	return l.waitFor(ctx, "alertmanager ready", func() error {
		return httpOK(ctx, client, l.AlertmanagerURL+"/-/ready", "", "")
	})
}

func (l *Lab) alertSinkURL() string {
	return fmt.Sprintf("http://%s:%d%s", MgmtIP, AlertSinkPort, alertsink.Path)
}
