package daemon

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/chaosd/chaosd/experiments"
)

// maxDataBody bounds the read-back answer of a data-loss check. A longer
// answer is an error, not truncated: a cut answer would show writes as lost.
const maxDataBody = 32 << 20

// dataClient is the runner's DataClient over HTTP: it makes the data-loss
// check's writes and read-backs (spec.dataLoss). Redirects are not
// followed: a 3xx is no acknowledgement.
type dataClient struct {
	hc *http.Client
}

func newDataClient() *dataClient {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 8
	tr.IdleConnTimeout = 30 * time.Second
	return &dataClient{hc: &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// Do sends req; the caller bounds it with ctx.
func (c *dataClient) Do(ctx context.Context, req experiments.DataRequest) (int, []byte, error) {
	var body io.Reader
	if req.Body != "" {
		body = strings.NewReader(req.Body)
	}
	hr, err := http.NewRequestWithContext(ctx, req.Method, req.URL, body)
	if err != nil {
		return 0, nil, fmt.Errorf("build request: %w", err)
	}
	for k, v := range req.Headers {
		hr.Header.Set(k, v)
	}
	if req.Body != "" && hr.Header.Get("Content-Type") == "" {
		hr.Header.Set("Content-Type", "application/json")
	}
	if hr.Header.Get("Accept") == "" {
		hr.Header.Set("Accept", "application/json")
	}
	hr.Header.Set("User-Agent", "chaosd-dataloss")
	resp, err := c.hc.Do(hr)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxDataBody+1))
	switch {
	case err != nil:
		return resp.StatusCode, nil, fmt.Errorf("read answer: %w", err)
	case len(b) > maxDataBody:
		return resp.StatusCode, nil, fmt.Errorf("answer larger than %d MiB", maxDataBody>>20)
	}
	return resp.StatusCode, b, nil
}
