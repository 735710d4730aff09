// Command chaosd is the chaos engineering daemon ("chaosd serve") and the
// node agent ("chaosd agent"), one binary so the agent can re-execute
// itself for helper modes.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/chaosd/chaosd/agent"
	"github.com/chaosd/chaosd/agent/kubepod"
	"github.com/chaosd/chaosd/agent/memory"
	"github.com/chaosd/chaosd/daemon"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	daemon.Version = version
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCommand().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaosd:", err)
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

type usageError struct{ error }

type logFlags struct {
	level  string
	format string
}

func (f *logFlags) logger() (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(f.level)
	if err != nil {
		return nil, usageError{fmt.Errorf("--log-level: %w", err)}
	}
	var cfg zap.Config
	switch f.format {
	case "json":
		cfg = zap.NewProductionConfig()
	case "console":
		cfg = zap.NewDevelopmentConfig()
		cfg.Development = false
	default:
		return nil, usageError{fmt.Errorf("--log-format: want json or console, got %q", f.format)}
	}
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.Sampling = nil
	return cfg.Build()
}

func newRootCommand() *cobra.Command {
	lf := &logFlags{}
	root := &cobra.Command{
		Use:           "chaosd",
		Short:         "Chaos engineering daemon and node agent",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.PersistentFlags().StringVar(&lf.level, "log-level", "info", "log level: debug, info, warn, error")
	root.PersistentFlags().StringVar(&lf.format, "log-format", "json", "log format: json or console")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newServeCommand(lf), newAgentCommand(lf), newCertsCommand(), newStressorCommand())
	return root
}

func newServeCommand(lf *logFlags) *cobra.Command {
	var configPath, kubeconfig, kubeContext string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run chaosd: API, scheduler and runner",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if configPath == "" {
				return usageError{errors.New("--config is required")}
			}
			lg, err := lf.logger()
			if err != nil {
				return err
			}
			defer lg.Sync() //nolint:errcheck
			cfg, err := daemon.LoadConfig(configPath)
			if err != nil {
				return usageError{err}
			}
			if kubeconfig != "" || kubeContext != "" {
				if cfg.Kubernetes == nil {
					return usageError{errors.New("--kubeconfig and --context need a kubernetes: section in the config")}
				}
				if kubeconfig != "" {
					cfg.Kubernetes.Kubeconfig = kubeconfig
				}
				if kubeContext != "" {
					cfg.Kubernetes.Context = kubeContext
				}
			}
			d, err := daemon.New(cfg, lg.Named("chaosd"))
			if err != nil {
				return err
			}
			return d.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "path to the chaosd config file (YAML)")
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (Kubernetes mode; overrides kubernetes.kubeconfig; default: in-cluster)")
	cmd.Flags().StringVar(&kubeContext, "context", "", "kubeconfig context (overrides kubernetes.context)")
	return cmd
}

// newStressorCommand is the agent's memory stressor: the agent starts its
// own binary in this hidden mode inside the target cgroup.
func newStressorCommand() *cobra.Command {
	return &cobra.Command{
		Use:                agent.StressorCommand,
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(_ *cobra.Command, args []string) error {
			if rc := memory.StressorMain(args); rc != 0 {
				return fmt.Errorf("stressor exited with status %d", rc)
			}
			return nil
		},
	}
}

func newAgentCommand(lf *logFlags) *cobra.Command {
	cfg := agent.Config{Version: version}
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the node agent that applies and reverts faults on this node",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.Node == "" || cfg.Socket == "" || cfg.TokenFile == "" || cfg.LedgerPath == "" {
				return usageError{errors.New("--node, --socket, --token-file and --ledger are required")}
			}
			if _, err := kubepod.ParseDriver(cfg.CgroupDriver); err != nil {
				return usageError{fmt.Errorf("--cgroup-driver: %w", err)}
			}
			lg, err := lf.logger()
			if err != nil {
				return err
			}
			defer lg.Sync() //nolint:errcheck
			return agent.Run(cmd.Context(), cfg, lg.Named("agent").With(zap.String("node", cfg.Node)))
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Node, "node", "", "name of this node")
	f.StringVar(&cfg.Socket, "socket", "", "unix socket path of the agent API")
	f.StringVar(&cfg.TCPAddr, "listen-tcp", "", "optional host:port to serve the API on as well")
	f.StringVar(&cfg.TLSCertFile, "tls-cert-file", "", "certificate of the TCP listener (PEM; with --tls-key-file and --tls-client-ca-file: mutual TLS)")
	f.StringVar(&cfg.TLSKeyFile, "tls-key-file", "", "private key of --tls-cert-file (PEM; mode 0600 or 0400)")
	f.StringVar(&cfg.ClientCAFile, "tls-client-ca-file", "", "CA that callers' client certificates (chaosd's) must chain to")
	f.BoolVar(&cfg.InsecurePlaintext, "insecure-plaintext", false, "serve --listen-tcp in plain HTTP, without TLS (logged as a warning)")
	f.StringVar(&cfg.TokenFile, "token-file", "", "file holding the bearer token callers must send")
	f.StringVar(&cfg.LedgerPath, "ledger", "", "path of the write-ahead fault ledger")
	f.StringVar(&cfg.NetNSPath, "netns", "", "network namespace of the node's faults (default: the agent's own)")
	f.StringVar(&cfg.CgroupRoot, "cgroup-root", "/sys/fs/cgroup", "the host's cgroup hierarchy (for memory faults and finding pods): a cgroup v2 root or v1 memory hierarchy, or where the host's cgroup filesystem is mounted (v1 under memory/, hybrid v2 under unified/)")
	f.StringVar(&cfg.CgroupDriver, "cgroup-driver", "auto", "kubelet's cgroup driver, to find pods' cgroups: auto, cgroupfs or systemd")
	f.DurationVar(&cfg.MaxLease, "max-lease", agent.DefaultMaxLease, "longest lease a fault may ask for (at inject and renewal)")
	f.DurationVar(&cfg.MaxFaultDuration, "max-fault-duration", agent.DefaultMaxFaultDuration, "furthest a fault's deadline may be from now")
	f.StringSliceVar(&cfg.ProtectedCIDRs, "protect-cidr", nil, "network no partition may cut without allowWide (repeat or comma-separate): the management network chaosd reaches this agent through, Prometheus's; 0.0.0.0/0 and ::/0 are always protected")
	f.StringVar(&cfg.CgroupNS, "cgroupns", "", "cgroup namespace to start memory stressors in, e.g. /proc/1/ns/cgroup (the host's, needs the host's PID namespace): required on cgroup v2 when the agent runs in a container with its own cgroup namespace (default: the agent's own)")
	return cmd
}
