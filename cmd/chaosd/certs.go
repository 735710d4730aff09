package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/chaosd/chaosd/internal/certgen"
)

// newCertsCommand is "chaosd certs": a small CA and the certificates of
// chaosd, its agents and clients, for the lab and first deployments.
func newCertsCommand() *cobra.Command {
	var (
		spec    certgen.Spec
		agents  []string
		noChaos bool
	)
	cmd := &cobra.Command{
		Use:   "certs --dir DIR [--chaosd-host H]... [--agent NAME[=HOST,...]]... [--client NAME]...",
		Short: "Make a CA and TLS certificates for chaosd, its agents and clients",
		Long: `Make a small certificate authority (ca.crt, ca.key) in DIR, reused when it is
already there, and sign with it:

  chaosd.crt/.key        chaosd's certificate: server (its TCP API) and client
                         (mutual TLS with the agents); names chaosd and --chaosd-host
  agent-NAME.crt/.key    an agent's server certificate, names NAME and its HOSTs
                         (the node's IPs or DNS names chaosd dials)
  NAME.crt/.key          a client certificate (e.g. chaosctl, prometheus)

Keys are written with mode 0600 (chaosd and the agents refuse key files others
can read). For the lab and first deployments; in production cert-manager can
issue the same certificates (see README, "TLS").`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if spec.Dir == "" {
				return usageError{errors.New("--dir is required")}
			}
			if noChaos {
				spec.Chaosd = nil
			} else if spec.Chaosd == nil {
				spec.Chaosd = []string{}
			}
			for _, a := range agents {
				name, hosts, _ := strings.Cut(a, "=")
				if name == "" {
					return usageError{fmt.Errorf("--agent %q: want NAME or NAME=HOST,HOST", a)}
				}
				ag := certgen.Agent{Name: name}
				if hosts != "" {
					ag.Hosts = strings.Split(hosts, ",")
				}
				spec.Agents = append(spec.Agents, ag)
			}
			files, err := certgen.Generate(spec)
			if err != nil {
				return err
			}
			for _, f := range files {
				fmt.Fprintln(cmd.OutOrStdout(), f)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&spec.Dir, "dir", "", "directory of the CA and certificates")
	f.StringSliceVar(&spec.Chaosd, "chaosd-host", nil, "a DNS name or IP of chaosd's API for its certificate (repeatable)")
	f.BoolVar(&noChaos, "no-chaosd", false, "do not make chaosd's certificate (e.g. adding an agent later)")
	f.StringArrayVar(&agents, "agent", nil, "an agent certificate: NAME or NAME=HOST,HOST (repeatable; one shared certificate for a DaemonSet: --agent chaosd-agent)")
	f.StringSliceVar(&spec.Clients, "client", nil, "a client certificate name (repeatable), e.g. chaosctl")
	f.DurationVar(&spec.Validity, "validity", 365*24*time.Hour, "validity of the certificates (the CA's is ten times longer)")
	return cmd
}
