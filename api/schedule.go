package api

import "time"

// Skip causes: why a schedule trigger did not start a run
// (SkipInfo.Cause).
const (
	SkipOverlap = "overlap" // a run of the experiment was still going
	SkipFreeze  = "freeze"  // inside a freeze window (SkipInfo.Window)
	SkipPaused  = "paused"  // the schedule is paused
	SkipMissed  = "missed"  // missed while chaosd was down (missedRuns policy)
	SkipError   = "error"   // chaosd could not start the run
)

// ScheduleState is what chaosd keeps per schedule across restarts.
type ScheduleState struct {
	// HandledUntil: every trigger up to this instant was handled (a run
	// started or a skip recorded). Triggers after it and before chaosd's
	// start were missed while it was down.
	HandledUntil time.Time `json:"handledUntil,omitzero"`
	// LastTrigger is the last fire time handled.
	LastTrigger *time.Time `json:"lastTrigger,omitempty"`
	// Paused schedules record their triggers as skipped (cause paused).
	Paused   bool       `json:"paused,omitempty"`
	PausedAt *time.Time `json:"pausedAt,omitempty"`
}

// ScheduleInfo is one entry of GET /v1/schedules: a scheduled experiment
// as chaosd runs it now.
type ScheduleInfo struct {
	// Experiment names the scheduled experiment, or "suite/NAME" for a
	// scheduled suite (then Suite is NAME).
	Experiment string `json:"experiment"`
	Suite      string `json:"suite,omitempty"`
	Cron       string `json:"cron"`
	TimeZone   string `json:"timeZone"`
	Paused     bool   `json:"paused"`
	// PausedAt is when the schedule was paused.
	PausedAt *time.Time `json:"pausedAt,omitempty"`
	// MissedRuns is the missed-run policy (skip or runOnce) and
	// StartingDeadline its deadline (runOnce).
	MissedRuns       string `json:"missedRuns"`
	StartingDeadline string `json:"startingDeadline,omitempty"`
	// FreezeWindows names the windows that hold for this experiment
	// (chaosd's configuration and the experiment's own).
	FreezeWindows []string `json:"freezeWindows,omitempty"`
	// Next are the next fire times; a frozen one names its window and
	// will be skipped.
	Next []FireTime `json:"next"`
	// LastTrigger is the last trigger chaosd handled (run or skipped).
	LastTrigger *time.Time `json:"lastTrigger,omitempty"`
	// LastRun is the experiment's latest run (any trigger).
	LastRun *RunSummary `json:"lastRun,omitempty"`
	// Skipped are the latest skipped triggers, newest first.
	Skipped []SkipInfo `json:"skipped"`
}

// FireTime is one coming trigger of a schedule.
type FireTime struct {
	Time time.Time `json:"time"`
	// Frozen names the freeze window the trigger falls in; it will be
	// skipped.
	Frozen string `json:"frozen,omitempty"`
}

// RunSummary names a run and how it ended.
type RunSummary struct {
	ID        string    `json:"id"`
	Trigger   Trigger   `json:"trigger"`
	CreatedAt time.Time `json:"createdAt"`
	Phase     Phase     `json:"phase"`
	Verdict   Verdict   `json:"verdict,omitempty"`
}
