package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/daemon/client"
	"github.com/chaosd/chaosd/internal/tlsconf"
)

// Defaults: the local lab's chaosd.
const (
	DefaultSocket   = "/run/chaosd-lab/lab/chaosd.sock"
	DefaultEndpoint = "unix://" + DefaultSocket
	DefaultTimeout  = 30 * time.Second
	tokenFileName   = "token" // next to the socket
	envEndpoint     = "CHAOSCTL_ENDPOINT"
	envSocket       = "CHAOSCTL_SOCKET"
	envToken        = "CHAOSCTL_TOKEN"
	envTokenFile    = "CHAOSCTL_TOKEN_FILE"
	flagEndpoint    = "endpoint"
	flagSocket      = "socket"
	flagToken       = "token"
	flagTokenFile   = "token-file"
	flagTimeout     = "timeout"
	flagContext     = "context"
	flagCAFile      = "ca-file"
	envCAFile       = "CHAOSCTL_CA_FILE"
)

// GlobalOptions are the flags every verb that talks to chaosd shares.
type GlobalOptions struct {
	Endpoint  string
	Socket    string
	Token     string
	TokenFile string
	// Context names a context of the config file (see "chaosctl config").
	Context string
	// CAFile is the CA of chaosd's TLS certificate (https endpoints).
	CAFile string
	// Timeout bounds each API call (0: no bound). Waiting for a run is not
	// one call: --wait waits until the verdict or Ctrl-C.
	Timeout time.Duration

	cmd *cobra.Command // root, to know which flags were set
}

// AddFlags binds the global flags to o on cmd's persistent flags.
func (o *GlobalOptions) AddFlags(cmd *cobra.Command) {
	o.cmd = cmd
	f := cmd.PersistentFlags()
	f.StringVar(&o.Endpoint, flagEndpoint, "",
		"chaosd endpoint: unix:///path.sock or http(s)://host:port (env "+envEndpoint+", default "+DefaultEndpoint+")")
	f.StringVar(&o.Socket, flagSocket, "",
		"chaosd unix socket path, shorthand for --endpoint unix://PATH (env "+envSocket+")")
	f.StringVar(&o.Token, flagToken, "",
		"API bearer token (env "+envToken+")")
	f.StringVar(&o.TokenFile, flagTokenFile, "",
		"file holding the API token (env "+envTokenFile+", default: 'token' next to the socket)")
	f.DurationVar(&o.Timeout, flagTimeout, DefaultTimeout, "bound on each API call (0: none)")
	f.StringVar(&o.Context, flagContext, "", "context of the chaosctl config file to use (default: its current-context; see 'chaosctl config')")
	f.StringVar(&o.CAFile, flagCAFile, "", "CA of chaosd's TLS certificate for https endpoints (env "+envCAFile+")")
}

// connection is the resolved endpoint and token.
type connection struct {
	endpoint string
	token    string
	// tokenNote explains a missing token, for 401 messages.
	tokenNote string
	// TLS of an https endpoint: the CA, and a client certificate.
	caFile, certFile, keyFile string
	// err is a failure to read a context's token file.
	err error
}

// connectionOf is what a context says.
func connectionOf(x ctlContext) connection {
	c := connection{endpoint: x.Endpoint, token: strings.TrimSpace(x.Token), caFile: x.CAFile, certFile: x.CertFile, keyFile: x.KeyFile}
	if x.TokenFile != "" {
		b, err := os.ReadFile(x.TokenFile)
		if err != nil {
			c.err = usageErrorf("context %s: read token file: %w", x.Name, err)
		}
		c.token = strings.TrimSpace(string(b))
	}
	if c.token == "" && c.err == nil {
		c.tokenNote = "context " + x.Name + " has no token"
	}
	return c
}

// resolve applies flags, then environment, then defaults.
func (o *GlobalOptions) resolve(lookupEnv func(string) (string, bool)) (connection, error) {
	var c connection
	changed := func(name string) bool { return o.cmd != nil && o.cmd.PersistentFlags().Changed(name) }
	env := func(name string) string {
		v, _ := lookupEnv(name)
		return strings.TrimSpace(v)
	}

	if changed(flagEndpoint) && changed(flagSocket) {
		return c, usageErrorf("--endpoint and --socket are exclusive: give one")
	}
	// A context: the one --context names (it beats the environment), or
	// the config's current one (the environment beats it, so
	// CHAOSCTL_SOCKET and friends keep working).
	var cx *connection
	cfgPath := configPath(lookupEnv)
	if o.Context != "" || (env(envEndpoint) == "" && env(envSocket) == "") {
		cfg, err := loadCtlConfig(cfgPath)
		if err != nil {
			return c, err
		}
		name := cfg.CurrentContext
		if o.Context != "" {
			name = o.Context
		}
		if name != "" {
			x, ok := cfg.find(name)
			if !ok {
				return c, usageErrorf("no context %q in %s", name, cfgPath)
			}
			cc := connectionOf(x)
			if cc.err != nil {
				return c, cc.err
			}
			cx = &cc
		}
	}
	socketEndpoint := func(path string) (string, error) {
		abs, err := filepath.Abs(path)
		if err != nil {
			return "", usageErrorf("socket path %q: %w", path, err)
		}
		return "unix://" + abs, nil
	}
	var err error
	switch {
	case changed(flagEndpoint):
		c.endpoint = o.Endpoint
	case changed(flagSocket):
		c.endpoint, err = socketEndpoint(o.Socket)
	case cx != nil:
		c.endpoint = cx.endpoint
	case env(envEndpoint) != "":
		c.endpoint = env(envEndpoint)
	case env(envSocket) != "":
		c.endpoint, err = socketEndpoint(env(envSocket))
	default:
		c.endpoint = DefaultEndpoint
	}
	if err != nil {
		return c, err
	}

	if changed(flagToken) && changed(flagTokenFile) {
		return c, usageErrorf("--token and --token-file are exclusive: give one")
	}
	readToken := func(path, from string) (string, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", usageErrorf("read token file given by %s: %w", from, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	switch {
	case changed(flagToken):
		c.token = strings.TrimSpace(o.Token)
	case changed(flagTokenFile):
		c.token, err = readToken(o.TokenFile, "--"+flagTokenFile)
	case cx != nil && cx.token != "":
		c.token = cx.token
	case env(envToken) != "":
		c.token = env(envToken)
	case env(envTokenFile) != "":
		c.token, err = readToken(env(envTokenFile), envTokenFile)
	case strings.HasPrefix(c.endpoint, "unix://"):
		// Default: the token file chaosd writes next to its socket. Missing
		// or unreadable is not an error here: chaosd will say 401 and the
		// note explains why no token was sent.
		path := filepath.Join(filepath.Dir(strings.TrimPrefix(c.endpoint, "unix://")), tokenFileName)
		b, rerr := os.ReadFile(path)
		switch {
		case rerr == nil:
			c.token = strings.TrimSpace(string(b))
		case errors.Is(rerr, fs.ErrNotExist):
			c.tokenNote = "no token sent: " + path + " does not exist"
		default:
			c.tokenNote = "no token sent: " + rerr.Error()
		}
	default:
		c.tokenNote = "no token given"
	}
	switch {
	case changed(flagCAFile):
		c.caFile = o.CAFile
	case cx != nil && cx.caFile != "":
		c.caFile = cx.caFile
	default:
		c.caFile = env(envCAFile)
	}
	if cx != nil {
		c.certFile, c.keyFile = cx.certFile, cx.keyFile
	}
	return c, err
}

// client returns a chaosd client built from the global options.
func (a *app) client() (*client.Client, connection, error) {
	conn, err := a.global.resolve(a.lookupEnv)
	if err != nil {
		return nil, conn, err
	}
	return a.clientFor(conn)
}

// clientFor returns a chaosd client for a resolved connection.
func (a *app) clientFor(conn connection) (*client.Client, connection, error) {
	if conn.err != nil {
		return nil, conn, conn.err
	}
	var opts []client.Option
	if conn.caFile != "" || conn.certFile != "" {
		tc, err := tlsconf.Client(tlsconf.ClientFiles{CAFile: conn.caFile, CertFile: conn.certFile, KeyFile: conn.keyFile})
		if err != nil {
			return nil, conn, usageErrorf("TLS of %s: %w", conn.endpoint, err)
		}
		opts = append(opts, client.WithTLS(tc))
	}
	c, err := client.NewClient(conn.endpoint, conn.token, opts...)
	if err != nil {
		return nil, conn, asUsage(err)
	}
	return c, conn, nil
}

// call runs one API call bounded by --timeout.
func call[T any](ctx context.Context, a *app, conn connection, f func(context.Context) (T, error)) (T, error) {
	if a.global.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, a.global.Timeout)
		defer cancel()
	}
	v, err := f(ctx)
	if err != nil && conn.tokenNote != "" {
		var ae *api.APIError
		if errors.As(err, &ae) && ae.Status == 401 {
			err = fmt.Errorf("%w (%s)", err, conn.tokenNote)
		}
	}
	return v, err
}
