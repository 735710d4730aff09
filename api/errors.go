package api

import (
	"errors"
	"fmt"
	"net/http"
)

// ErrUnreachable is wrapped by every error that means chaosd could not be
// reached at all (dial, TLS, connection reset, timeout): the request got no
// HTTP answer.
var ErrUnreachable = errors.New("chaosd unreachable")

// APIError is a non-2xx answer from chaosd.
type APIError struct {
	Status  int    // HTTP status code
	Message string // the api.Error body, or the raw body / status text
}

func (e *APIError) Error() string {
	return fmt.Sprintf("chaosd answered %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}
