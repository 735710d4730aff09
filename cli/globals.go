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
)

// GlobalOptions are the flags every verb that talks to chaosd shares.
type GlobalOptions struct {
	Endpoint  string
	Socket    string
	Token     string
	TokenFile string
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
}

// connection is the resolved endpoint and token.
type connection struct {
	endpoint string
	token    string
	// tokenNote explains a missing token, for 401 messages.
	tokenNote string
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
	return c, err
}

// client returns a chaosd client built from the global options.
func (a *app) client() (*client.Client, connection, error) {
	conn, err := a.global.resolve(a.lookupEnv)
	if err != nil {
		return nil, conn, err
	}
	c, err := client.NewClient(conn.endpoint, conn.token)
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
