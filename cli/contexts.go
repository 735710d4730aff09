package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/goccy/go-yaml"
	"github.com/spf13/cobra"

	"github.com/chaosd/chaosd/api"
)

// envConfig overrides where chaosctl keeps its contexts.
const envConfig = "CHAOSCTL_CONFIG"

// ctlConfig is chaosctl's config file, in the kubeconfig style: named
// contexts, one of them current.
type ctlConfig struct {
	CurrentContext string       `yaml:"current-context,omitempty"`
	Contexts       []ctlContext `yaml:"contexts"`
}

// ctlContext is one chaosd to talk to.
type ctlContext struct {
	Name     string `yaml:"name"`
	Endpoint string `yaml:"endpoint"` // unix:///path.sock or https://host:port
	// CAFile is the CA of chaosd's TLS certificate (https endpoints).
	CAFile string `yaml:"caFile,omitempty"`
	// CertFile and KeyFile are a client certificate, when chaosd asks
	// for one (listen.tls.clientCAFile).
	CertFile string `yaml:"certFile,omitempty"`
	KeyFile  string `yaml:"keyFile,omitempty"`
	// TokenFile or Token is the bearer credential.
	TokenFile string `yaml:"tokenFile,omitempty"`
	Token     string `yaml:"token,omitempty"`
}

// configPath is CHAOSCTL_CONFIG, else $XDG_CONFIG_HOME/chaosctl/config,
// else ~/.config/chaosctl/config ("" when none can be known).
func configPath(lookupEnv func(string) (string, bool)) string {
	if v, _ := lookupEnv(envConfig); v != "" {
		return v
	}
	if v, _ := lookupEnv("XDG_CONFIG_HOME"); v != "" {
		return filepath.Join(v, "chaosctl", "config")
	}
	if v, _ := lookupEnv("HOME"); v != "" {
		return filepath.Join(v, ".config", "chaosctl", "config")
	}
	return ""
}

// loadCtlConfig reads the config file; a missing file is an empty config.
func loadCtlConfig(path string) (*ctlConfig, error) {
	c := &ctlConfig{}
	if path == "" {
		return c, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, usageErrorf("chaosctl config: %w", err)
	}
	if err := yaml.NewDecoder(bytes.NewReader(b), yaml.DisallowUnknownField()).Decode(c); err != nil {
		return nil, usageErrorf("chaosctl config %s: %s", path, yaml.FormatError(err, false, true))
	}
	seen := map[string]bool{}
	for i, x := range c.Contexts {
		if x.Name == "" || x.Endpoint == "" {
			return nil, usageErrorf("chaosctl config %s: contexts[%d]: name and endpoint are required", path, i)
		}
		if seen[x.Name] {
			return nil, usageErrorf("chaosctl config %s: context %q defined twice", path, x.Name)
		}
		seen[x.Name] = true
	}
	return c, nil
}

func (c *ctlConfig) find(name string) (ctlContext, bool) {
	for _, x := range c.Contexts {
		if x.Name == name {
			return x, true
		}
	}
	return ctlContext{}, false
}

// save writes the config with mode 0600 (it may hold tokens).
func (c *ctlConfig) save(path string) error {
	if path == "" {
		return usageErrorf("no config file: set %s or HOME", envConfig)
	}
	b, err := yaml.Marshal(c)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("chaosctl config: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("chaosctl config: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("chaosctl config: %w", err)
	}
	return nil
}

func (a *app) newConfigCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Manage contexts (named chaosd endpoints with their CA and credential)",
		Long: `chaosctl keeps named contexts in ` + "$" + envConfig + ` (default ~/.config/chaosctl/config):

  current-context: c1
  contexts:
    - name: c1
      endpoint: https://chaosd.c1.example:7080
      caFile: ~/.config/chaosctl/c1-ca.crt
      tokenFile: ~/.config/chaosctl/c1-token

--context NAME picks one for a command; flags and CHAOSCTL_* variables still
override what a context says (an explicit --context beats the variables).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageErrorf("config needs a subcommand: get-contexts, use-context, set-context")
		},
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "get-contexts",
		Short: "List the contexts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := loadCtlConfig(configPath(a.lookupEnv))
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(a.streams.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CURRENT\tNAME\tENDPOINT\tCA")
			for _, x := range c.Contexts {
				cur := ""
				if x.Name == c.CurrentContext {
					cur = "*"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", cur, x.Name, x.Endpoint, x.CAFile)
			}
			return tw.Flush()
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "use-context NAME",
		Short: "Make NAME the current context",
		Args:  exactArgs(1, "exactly one context NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := configPath(a.lookupEnv)
			c, err := loadCtlConfig(path)
			if err != nil {
				return err
			}
			if _, ok := c.find(args[0]); !ok {
				return usageErrorf("no context %q in %s", args[0], path)
			}
			c.CurrentContext = args[0]
			if err := c.save(path); err != nil {
				return err
			}
			fmt.Fprintf(a.streams.Out, "Switched to context %q.\n", args[0])
			return nil
		},
	})
	var nc ctlContext
	set := &cobra.Command{
		Use:   "set-context NAME --endpoint URL [--ca-file F] [--token-file F]",
		Short: "Add or replace a context",
		Args:  exactArgs(1, "exactly one context NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := configPath(a.lookupEnv)
			c, err := loadCtlConfig(path)
			if err != nil {
				return err
			}
			if nc.Endpoint == "" {
				return usageErrorf("set-context: --endpoint is required")
			}
			nc.Name = args[0]
			replaced := false
			for i := range c.Contexts {
				if c.Contexts[i].Name == nc.Name {
					c.Contexts[i], replaced = nc, true
				}
			}
			if !replaced {
				c.Contexts = append(c.Contexts, nc)
			}
			if c.CurrentContext == "" {
				c.CurrentContext = nc.Name
			}
			return c.save(path)
		},
	}
	// Local flags with other names than the global --endpoint/--token-file
	// would be confusing; these are the set-context's own.
	set.Flags().StringVar(&nc.Endpoint, "endpoint", "", "chaosd endpoint")
	set.Flags().StringVar(&nc.CAFile, "ca-file", "", "CA of chaosd's certificate")
	set.Flags().StringVar(&nc.TokenFile, "token-file", "", "file holding the token")
	set.Flags().StringVar(&nc.CertFile, "cert-file", "", "client certificate")
	set.Flags().StringVar(&nc.KeyFile, "key-file", "", "client certificate's key")
	cmd.AddCommand(set)
	return cmd
}

// exactArgs is cobra.ExactArgs with a usage message of our own.
func exactArgs(n int, msg string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErrorf("%s", msg)
		}
		return nil
	}
}

// haltAllContexts halts every context's chaosd in parallel and reports
// each; it fails (exit 3) when any could not be halted completely.
func (o *HaltOptions) haltAllContexts(ctx context.Context, a *app) error {
	path := configPath(a.lookupEnv)
	cfg, err := loadCtlConfig(path)
	if err != nil {
		return err
	}
	if len(cfg.Contexts) == 0 {
		return usageErrorf("--all-contexts: no contexts in %s", path)
	}
	type outcome struct {
		res api.HaltResult
		err error
	}
	out := make([]outcome, len(cfg.Contexts))
	var wg sync.WaitGroup
	for i, x := range cfg.Contexts {
		wg.Go(func() {
			c, conn, err := a.clientFor(connectionOf(x))
			if err != nil {
				out[i].err = err
				return
			}
			out[i].res, out[i].err = call(ctx, a, conn, func(ctx context.Context) (api.HaltResult, error) { return c.Halt(ctx, o.Cluster) })
		})
	}
	wg.Wait()
	failed := []string{}
	report := map[string]any{}
	for i, x := range cfg.Contexts {
		r := out[i]
		bad := r.err != nil
		for _, n := range r.res.Agents {
			bad = bad || n.Error != ""
		}
		if bad {
			failed = append(failed, x.Name)
		}
		if isData(o.Output) {
			e := map[string]any{"result": r.res}
			if r.err != nil {
				e["error"] = Message(r.err)
			}
			report[x.Name] = e
			continue
		}
		if r.err != nil {
			fmt.Fprintf(a.streams.Out, "context %s (%s): NOT HALTED: %s\n", x.Name, x.Endpoint, Message(r.err))
			continue
		}
		fmt.Fprintf(a.streams.Out, "context %s (%s): aborted %d run(s)\n", x.Name, x.Endpoint, len(r.res.AbortedRuns))
		printHalt(a, r.res)
	}
	if isData(o.Output) {
		if err := writeData(a.streams.Out, o.Output, report); err != nil {
			return err
		}
	}
	if len(failed) > 0 {
		sort.Strings(failed)
		return fmt.Errorf("%w: contexts %s", errHaltIncomplete, strings.Join(failed, ", "))
	}
	return nil
}
