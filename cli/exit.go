package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/cli/report"
)

// Exit codes. They are decided here and nowhere else.
const (
	// ExitOK: the verdict is pass, or the command did what was asked.
	ExitOK = 0
	// ExitFailed: the system under test failed the experiment (verdict
	// fail or aborted).
	ExitFailed = 1
	// ExitUsage: invalid usage or an invalid spec (unknown flag or verb,
	// missing argument, bad -o, validation errors, unknown experiment or
	// run, 400 from chaosd).
	ExitUsage = 2
	// ExitTool: chaosctl could not do its job (chaosd unreachable, 5xx,
	// 401/403, a run whose verdict is error or that was interrupted, or
	// waiting stopped by Ctrl-C before the verdict).
	ExitTool = 3
)

// ExitCode maps an error returned by a command to the process exit code.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var (
		sve *SuiteVerdictError
		ve  *VerdictError
		ae  *api.APIError
		ue  *usageError
		ise *invalidSpecError
	)
	switch {
	case errors.As(err, &sve):
		return ExitCode(&VerdictError{Run: api.Run{Verdict: sve.Run.Verdict, Interrupted: sve.Run.Interrupted}})
	case errors.As(err, &ve):
		if ve.Run.Interrupted {
			return ExitTool
		}
		switch ve.Run.Verdict {
		case api.VerdictPass:
			return ExitOK
		case api.VerdictFail, api.VerdictAborted:
			return ExitFailed
		default: // error, or a verdict this chaosctl does not know
			return ExitTool
		}
	case errors.As(err, &ue), errors.As(err, &ise):
		return ExitUsage
	case errors.As(err, &ae):
		switch ae.Status {
		case http.StatusBadRequest, http.StatusNotFound, http.StatusUnprocessableEntity:
			return ExitUsage
		default: // 401, 403, 409, 5xx, ...
			return ExitTool
		}
	default: // unreachable, interrupted wait, undecodable answer, ...
		return ExitTool
	}
}

// Message is the one-line (or few-line) wording of err for users.
func Message(err error) string {
	var ae *api.APIError
	switch {
	case errors.As(err, &ae):
		msg := err.Error()
		switch ae.Status {
		case http.StatusUnauthorized, http.StatusForbidden:
			msg += "\n  check the token: --token, --token-file, CHAOSCTL_TOKEN or CHAOSCTL_TOKEN_FILE"
		}
		return msg
	case errors.Is(err, api.ErrUnreachable) && !errors.Is(err, context.Canceled):
		return err.Error() + "\n  is chaosd running? set the endpoint with --endpoint, --socket or CHAOSCTL_ENDPOINT"
	}
	return err.Error()
}

// VerdictError is returned when a run ended with a verdict other than pass;
// its exit code depends on the verdict.
type VerdictError struct {
	Run api.Run
}

func (e *VerdictError) Error() string {
	return fmt.Sprintf("run %s of %s: %s", e.Run.ID, e.Run.Experiment, report.Verdict(e.Run))
}

// usageError marks invalid usage.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

func asUsage(err error) error {
	if err == nil || isUsage(err) {
		return err
	}
	return &usageError{err}
}

func isUsage(err error) bool {
	var ue *usageError
	return errors.As(err, &ue)
}

// invalidSpecError is returned by validate when a file is invalid (the
// details have been printed already).
type invalidSpecError struct{ invalid, total int }

func (e *invalidSpecError) Error() string {
	files := "files"
	if e.total == 1 {
		files = "file"
	}
	return fmt.Sprintf("%d of %d experiment %s invalid", e.invalid, e.total, files)
}

// wrapf adds what was being done to err; the exit code is kept.
func wrapf(err error, format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), err)
}

// oneLine squeezes whitespace so a server message fits a table cell.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
