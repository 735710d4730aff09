package api

import "time"

// SuitePhase is where a suite run is.
type SuitePhase string

// Phases of a suite run.
const (
	SuitePending SuitePhase = "pending"
	// SuiteRunning: an experiment of the suite is running
	// (SuiteRun.Current names it).
	SuiteRunning SuitePhase = "running"
	// SuitePausing: between two experiments (SuiteEntryResult.NotBefore
	// of the next one says until when).
	SuitePausing SuitePhase = "pausing"
	SuiteDone    SuitePhase = "done"
)

// Why a suite's entry did not run (SuiteEntryResult.Skipped).
const (
	SkippedAfterFailure = "stopped at the first failure"
	SkippedAborted      = "the suite run was aborted"
	SkippedInterrupted  = "chaosd stopped during the suite run"
)

// SuiteRun is the record of one run of a suite: its experiments' runs in
// order, each with its verdict, and the suite's verdict. chaosd saves it
// whole on every change (like a Run) and a restart marks one that was
// going as interrupted; the member run's own recovery reverts its faults.
type SuiteRun struct {
	// ID starts with "s-"; member runs have their own IDs ("r-...").
	ID      string  `json:"id"`
	Suite   string  `json:"suite"`
	Trigger Trigger `json:"trigger"`
	// DryRun: every experiment runs as a dry run (nothing injected, no
	// pause between them).
	DryRun bool `json:"dryRun,omitempty"`
	// ScheduledAt, MissedPolicy and ForcedFreeze are as in Run.
	ScheduledAt  *time.Time `json:"scheduledAt,omitempty"`
	MissedPolicy string     `json:"missedPolicy,omitempty"`
	ForcedFreeze string     `json:"forcedFreeze,omitempty"`
	// StopOnFailure is the suite's spec.stopOnFailure when it started.
	StopOnFailure bool       `json:"stopOnFailure"`
	Phase         SuitePhase `json:"phase"`
	// Verdict is pass when every experiment passed; otherwise the first
	// verdict that was not pass (in the suite's order), aborted when the
	// suite run itself was aborted or halted, or error when an
	// experiment could not be started or chaosd stopped.
	Verdict Verdict `json:"verdict,omitempty"`
	// Reason explains the verdict in one sentence.
	Reason string `json:"reason,omitempty"`
	// Interrupted is set when chaosd restarted while the suite was going.
	Interrupted bool `json:"interrupted,omitempty"`
	// Current is the index in Entries of the experiment running or, while
	// pausing, of the next one; -1 when none.
	Current    int                `json:"current"`
	CreatedAt  time.Time          `json:"createdAt"`
	FinishedAt *time.Time         `json:"finishedAt,omitempty"`
	Entries    []SuiteEntryResult `json:"entries"`
}

// SuiteEntryResult is one experiment of a suite run.
type SuiteEntryResult struct {
	Experiment string `json:"experiment"`
	// RunID is the experiment's run (describe it with chaosctl describe
	// run); empty when it did not start.
	RunID string `json:"runId,omitempty"`
	// Phase is the run's phase (live while it runs).
	Phase   Phase   `json:"phase,omitempty"`
	Verdict Verdict `json:"verdict,omitempty"`
	Reason  string  `json:"reason,omitempty"`
	// Interrupted is the run's own flag.
	Interrupted bool `json:"interrupted,omitempty"`
	// NotBefore is when the experiment may start: the end of the pause
	// after the previous one.
	NotBefore  *time.Time `json:"notBefore,omitempty"`
	StartedAt  *time.Time `json:"startedAt,omitempty"`
	FinishedAt *time.Time `json:"finishedAt,omitempty"`
	// Skipped says why the experiment did not run (one of the Skipped*
	// constants, or why chaosd could not start it).
	Skipped string `json:"skipped,omitempty"`
}

// SuiteStartRequest is the body of POST /v1/suite-runs.
type SuiteStartRequest struct {
	Suite  string `json:"suite"`
	DryRun bool   `json:"dryRun,omitempty"`
	// Force starts the suite (and each of its experiments) inside a
	// freeze window; the record names the window.
	Force bool `json:"force,omitempty"`
}

// SuiteInfo is one entry of GET /v1/suites.
type SuiteInfo struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Source      string   `json:"source,omitempty"`
	Experiments []string `json:"experiments"`
	// StopOnFailure is spec.stopOnFailure; Pause spec.pause ("" when
	// automatic: each next experiment's baseline plus a probe interval).
	StopOnFailure bool       `json:"stopOnFailure"`
	Pause         string     `json:"pause,omitempty"`
	Schedule      string     `json:"schedule,omitempty"`
	TimeZone      string     `json:"timeZone,omitempty"`
	NextRun       *time.Time `json:"nextRun,omitempty"`
}

// SuiteRunPrefix starts every suite run ID.
const SuiteRunPrefix = "s-"

// DeepCopy returns a copy of s that shares no memory with it.
func (s SuiteRun) DeepCopy() SuiteRun {
	cp := s
	cp.ScheduledAt = clonePtr(s.ScheduledAt)
	cp.FinishedAt = clonePtr(s.FinishedAt)
	if s.Entries != nil {
		cp.Entries = make([]SuiteEntryResult, len(s.Entries))
		for i, e := range s.Entries {
			e.NotBefore, e.StartedAt, e.FinishedAt = clonePtr(e.NotBefore), clonePtr(e.StartedAt), clonePtr(e.FinishedAt)
			cp.Entries[i] = e
		}
	}
	return cp
}
