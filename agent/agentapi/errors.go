package agentapi

import (
	"errors"
	"fmt"
	"net/http"
)

// ErrUnreachable wraps every transport failure of a call to an agent
// (dial, TLS, reset, timeout, unreadable answer): the agent may or may not
// have acted.
var ErrUnreachable = errors.New("agent unreachable")

// APIError is a non-2xx answer from the agent.
type APIError struct {
	Status  int    // HTTP status code
	Message string // the agent's error message
	// Fault is the fault's status when the agent sent one (410 Gone on
	// renew of a reverted fault).
	Fault *FaultStatus
}

func (e *APIError) Error() string {
	return fmt.Sprintf("agent answered %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}
