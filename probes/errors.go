package probes

import "errors"

var (
	// ErrUnreachable means Prometheus could not be asked: connection
	// refused, DNS failure, no answer within the query timeout, or a
	// server that is not serving queries (HTTP 5xx that is not a query
	// error, "unavailable"). The CLI maps it to "the tool could not do its
	// job", not to a failed experiment.
	ErrUnreachable = errors.New("prometheus unreachable")
	// ErrQuery means Prometheus answered but rejected or failed the query
	// (syntax error, execution error, server-side timeout, bad response).
	ErrQuery = errors.New("prometheus query failed")
	// ErrInvalidProbe means the probe itself is malformed (see
	// Probe.Validate); it was not sent to Prometheus.
	ErrInvalidProbe = errors.New("invalid probe")
)
