package cli

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/chaosd/chaosd/api"
)

// Version is chaosctl's version, set at build time with
// -ldflags "-X github.com/chaosd/chaosd/cli.Version=v1.2.3".
var Version = "dev"

// VersionOptions are the options of "chaosctl version".
type VersionOptions struct {
	Client bool
	Output string
}

// Versions is what "chaosctl version -o json|yaml" prints.
type Versions struct {
	Client ClientVersion `json:"client"`
	// Server is chaosd's answer (nil with --client, or when chaosd could
	// not be asked).
	Server *api.VersionInfo `json:"server,omitempty"`
	// Endpoint is the chaosd asked.
	Endpoint string `json:"endpoint,omitempty"`
}

// ClientVersion is chaosctl's own version.
type ClientVersion struct {
	Version   string `json:"version"`
	Revision  string `json:"revision,omitempty"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

func (a *app) newVersionCommand() *cobra.Command {
	o := &VersionOptions{}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print chaosctl's version and chaosd's",
		Long: `Print chaosctl's version and the version of the chaosd it talks to (GET /v1/version).
When chaosd cannot be asked, chaosctl's version is still printed on stdout, the reason goes
to stderr and the exit code is the error's (3: unreachable or refused, as for every verb).
--client prints chaosctl's version only, without contacting chaosd.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := validateOutput(o.Output); err != nil {
				return err
			}
			return o.Run(cmd.Context(), a)
		},
	}
	cmd.Flags().BoolVar(&o.Client, "client", false, "print chaosctl's version only (do not contact chaosd)")
	addOutputFlag(cmd, &o.Output)
	return cmd
}

func clientVersion() ClientVersion {
	v := ClientVersion{Version: Version, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v.Revision = s.Value[:12]
			}
		}
	}
	return v
}

// Run prints the versions. chaosd's error, if any, is returned after
// chaosctl's version is printed.
func (o *VersionOptions) Run(ctx context.Context, a *app) error {
	out := Versions{Client: clientVersion()}
	var serverErr error
	if !o.Client {
		c, conn, err := a.client()
		if err == nil {
			out.Endpoint = c.Endpoint()
			var v api.VersionInfo
			v, err = call(ctx, a, conn, c.Version)
			if err == nil {
				out.Server = &v
			}
		}
		if err != nil {
			serverErr = wrapf(err, "chaosd's version")
		}
	}
	if isData(o.Output) {
		if err := writeData(a.streams.Out, o.Output, out); err != nil {
			return err
		}
		return serverErr
	}
	cv := out.Client
	rev := ""
	if cv.Revision != "" {
		rev = " " + cv.Revision
	}
	fmt.Fprintf(a.streams.Out, "Client: chaosctl %s%s (%s, %s)\n", cv.Version, rev, cv.GoVersion, cv.Platform)
	if s := out.Server; s != nil {
		mode := ""
		if s.Mode != "" {
			mode = ", " + s.Mode
		}
		fmt.Fprintf(a.streams.Out, "Server: chaosd %s (%s, %s%s) at %s\n", s.Version, s.GoVersion, s.Platform, mode, out.Endpoint)
	}
	return serverErr
}
