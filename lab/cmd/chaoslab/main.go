// Command chaoslab brings the local two-cluster lab up and down
// (make lab-up / make lab-down).
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/chaosd/chaosd/lab"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCommand(os.Stdout, os.Stderr).ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "chaoslab:", err)
		os.Exit(1)
	}
}

// options are the flags every verb shares.
type options struct {
	name, prefix, stateDir, binDir, experimentsDir string
	knobs                                          []string
	build, kube                                    bool
	kubeBinDir                                     string
	rps                                            int
	verbose                                        bool
}

func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	o := &options{}
	root := &cobra.Command{
		Use:           "chaoslab",
		Short:         "Local two-cluster PetClinic lab in network namespaces",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&o.name, "name", "lab", "lab name (state in /run/chaosd-lab/NAME)")
	root.PersistentFlags().StringVar(&o.prefix, "prefix", "cl", "network namespace name prefix")
	root.PersistentFlags().StringVar(&o.stateDir, "state-dir", "", "state directory (default /run/chaosd-lab/NAME)")
	root.PersistentFlags().BoolVarP(&o.verbose, "verbose", "v", false, "debug logs")
	root.AddCommand(newUpCommand(o, stdout, stderr), newDownCommand(o, stderr), newStatusCommand(o, stdout, stderr),
		newTruthCommand(o, stdout), newAlertsCommand(o, stdout))
	return root
}

func (o *options) logger(stderr io.Writer) *zap.Logger {
	cfg := zap.NewDevelopmentEncoderConfig()
	lvl := zap.InfoLevel
	if o.verbose {
		lvl = zap.DebugLevel
	}
	return zap.New(zapcoreFor(cfg, stderr, lvl)).Named("chaoslab")
}

func (o *options) config(stderr io.Writer) (lab.Config, error) {
	cfg := lab.Config{
		Name: o.name, Prefix: o.prefix, StateDir: o.stateDir, BinDir: o.binDir, ExperimentsDir: o.experimentsDir,
		StartControlPlane: true, LoadRPS: o.rps, Logger: o.logger(stderr), Knobs: map[string][]string{},
		Kube: o.kube, KubeBinDir: o.kubeBinDir,
	}
	for _, k := range o.knobs {
		proc, flag, ok := strings.Cut(k, "=")
		if !ok || proc == "" || !strings.HasPrefix(flag, "-") {
			return cfg, fmt.Errorf("--knob %q: want PROCESS=--flag[=value], e.g. visits-service=--customers-reconnect=never", k)
		}
		cfg.Knobs[proc] = append(cfg.Knobs[proc], flag)
	}
	return cfg, nil
}

func newUpCommand(o *options, stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Create the lab and start every process; prints the chaosctl environment",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			repo, _ := findRepo()
			if o.binDir == "" {
				if repo == "" {
					return errors.New("--bin-dir is required outside the repository")
				}
				o.binDir = filepath.Join(repo, "bin")
			}
			if o.experimentsDir == "" {
				if repo == "" {
					return errors.New("--experiments-dir is required outside the repository")
				}
				o.experimentsDir = filepath.Join(repo, "experiments", "library")
			}
			cfg, err := o.config(stderr)
			if err != nil {
				return err
			}
			if o.build {
				if repo == "" {
					return errors.New("--build needs the repository")
				}
				if err := build(cmd.Context(), repo, o.binDir, stderr); err != nil {
					return err
				}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 3*time.Minute)
			defer cancel()
			l, err := lab.Up(ctx, cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "# lab %q is up (state %s, logs %s)\n", l.Name, l.StateDir, filepath.Join(l.StateDir, "logs"))
			for _, e := range l.Env() {
				fmt.Fprintf(stdout, "export %s\n", e)
			}
			fmt.Fprintf(stdout, "# prometheus: ip netns exec %s curl %s/api/v1/targets\n", l.Namespaces[lab.RoleMgmt], l.PrometheusURL)
			fmt.Fprintf(stdout, "# ground truth: %s\n", l.TruthFile)
			fmt.Fprintf(stdout, "# alertmanager %s (mgmt); notifications: %s (chaoslab alerts)\n", l.AlertmanagerURL, l.AlertsFile)
			if l.KubeAPIURL != "" {
				fmt.Fprintf(stdout, "# kube-apiserver %s (mgmt loopback): ip netns exec %s kubectl --kubeconfig %s get nodes,pods -A\n",
					l.KubeAPIURL, l.Namespaces[lab.RoleMgmt], l.Kubeconfig)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&o.binDir, "bin-dir", "", "directory with petclinic, loadgen and chaosd (default REPO/bin)")
	cmd.Flags().StringVar(&o.experimentsDir, "experiments-dir", "", "chaosd experimentsDir (default REPO/experiments/library)")
	cmd.Flags().StringArrayVar(&o.knobs, "knob", nil, "extra flag for a process, PROCESS=--flag[=value] (repeatable), e.g. visits-service=--customers-reconnect=never")
	cmd.Flags().BoolVar(&o.build, "build", false, "go build the binaries into --bin-dir first")
	cmd.Flags().IntVar(&o.rps, "rps", 20, "load generator rate")
	cmd.Flags().BoolVar(&o.kube, "kube", false, "Kubernetes mode: etcd + kube-apiserver in the mgmt namespace, C1 registered as Nodes and Pods, chaosd discovering them")
	cmd.Flags().StringVar(&o.kubeBinDir, "kube-bin-dir", "", "directory with kube-apiserver and etcd (default $CHAOSD_K8S_BIN_DIR; hack/k8s-bins.sh builds them)")
	return cmd
}

func newDownCommand(o *options, stderr io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "down",
		Short: "Stop every lab process, delete the lab namespaces and the state directory",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := o.config(stderr)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.WithoutCancel(cmd.Context()), 2*time.Minute)
			defer cancel()
			return lab.DownConfig(ctx, cfg)
		},
	}
}

func newStatusCommand(o *options, stdout, stderr io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the lab's namespaces, processes and Prometheus targets",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := o.config(stderr)
			if err != nil {
				return err
			}
			s, err := lab.GetStatus(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "lab %s (prefix %s, state %s, up since %s)\n", s.Name, s.Prefix, s.StateDir, s.CreatedAt.Format(time.RFC3339))
			var nss []string
			for ns := range s.Namespaces {
				nss = append(nss, ns)
			}
			sort.Strings(nss)
			for _, ns := range nss {
				fmt.Fprintf(stdout, "  netns %-12s %s\n", ns, map[bool]string{true: "present", false: "MISSING"}[s.Namespaces[ns]])
			}
			for _, p := range s.Procs {
				fmt.Fprintf(stdout, "  proc  %-18s pid %-7d %-10s %s\n", p.Name, p.PID, map[bool]string{true: "running", false: "STOPPED"}[p.Running], p.Netns)
			}
			var jobs []string
			for j := range s.Targets {
				jobs = append(jobs, j)
			}
			sort.Strings(jobs)
			for _, j := range jobs {
				fmt.Fprintf(stdout, "  job   %-18s %s\n", j, map[bool]string{true: "up", false: "DOWN"}[s.Targets[j]])
			}
			if s.KubeAPIURL != "" {
				fmt.Fprintf(stdout, "  kube-apiserver %s in %s-mgmt (kubeconfig %s)\n", s.KubeAPIURL, s.Prefix, s.Kubeconfig)
			}
			for _, e := range s.Env {
				fmt.Fprintf(stdout, "export %s\n", e)
			}
			return nil
		},
	}
}

// findRepo walks up from the working directory to the module root.
func findRepo() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module github.com/chaosd/chaosd\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the chaosd repository")
		}
		dir = parent
	}
}

func build(ctx context.Context, repo, binDir string, stderr io.Writer) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", binDir+"/", "./cmd/chaosd", "./lab/cmd/petclinic", "./lab/cmd/loadgen", "./lab/cmd/cadvisor", "./lab/cmd/alertsink")
	cmd.Dir, cmd.Stdout, cmd.Stderr = repo, stderr, stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build lab binaries: %w", err)
	}
	return nil
}
