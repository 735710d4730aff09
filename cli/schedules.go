package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/chaosd/chaosd/api"
)

// "chaosctl get schedules", "chaosctl pause schedule NAME" and
// "chaosctl resume schedule NAME".

func (a *app) newGetSchedulesCommand() *cobra.Command {
	o := &GetOptions{}
	cmd := &cobra.Command{
		Use:     "schedules",
		Aliases: []string{"schedule", "sched"},
		Short:   "List scheduled experiments: cron and time zone, paused, next fire times (frozen ones marked), last run, skipped triggers",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			return o.RunSchedules(cmd.Context(), a)
		},
	}
	addOutputFlag(cmd, &o.Output)
	return cmd
}

// RunSchedules lists the schedules: a table, then per schedule its
// freeze-marked fire times and latest skips.
func (o *GetOptions) RunSchedules(ctx context.Context, a *app) error {
	c, conn, err := a.client()
	if err != nil {
		return err
	}
	scheds, err := call(ctx, a, conn, c.Schedules)
	if err != nil {
		return wrapf(err, "list schedules")
	}
	if o.Output != outputText {
		if scheds == nil {
			scheds = []api.ScheduleInfo{}
		}
		return writeJSON(a.streams.Out, scheds)
	}
	now := a.now()
	tw := tabwriter.NewWriter(a.streams.Out, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "EXPERIMENT\tCRON\tTIME ZONE\tSTATUS\tNEXT\tLAST RUN\tSKIPPED")
	for _, s := range scheds {
		status := "active"
		if s.Paused {
			status = "PAUSED"
		}
		next := "-"
		if len(s.Next) > 0 {
			next = fireTime(s.Next[0], s.TimeZone, now)
		}
		last := "-"
		if r := s.LastRun; r != nil {
			last = fmt.Sprintf("%s %s (%s, %s ago)", r.ID, orDash(string(r.Verdict)), r.Trigger, age(now, r.CreatedAt))
			if r.Phase != api.PhaseDone {
				last = fmt.Sprintf("%s %s (%s)", r.ID, r.Phase, r.Trigger)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", s.Experiment, s.Cron, s.TimeZone, status, next, last, len(s.Skipped))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range scheds {
		fmt.Fprintf(a.streams.Out, "\n%s:\n", s.Experiment)
		if s.Paused && s.PausedAt != nil {
			fmt.Fprintf(a.streams.Out, "  paused since %s: triggers are recorded as skipped ('chaosctl resume schedule %s')\n",
				s.PausedAt.Format(time.RFC3339), s.Experiment)
		}
		missed := "missed runs: " + s.MissedRuns
		if s.StartingDeadline != "" {
			missed += " within " + s.StartingDeadline
		}
		freezes := "none"
		if len(s.FreezeWindows) > 0 {
			freezes = strings.Join(s.FreezeWindows, ", ")
		}
		fmt.Fprintf(a.streams.Out, "  %s; freeze windows: %s\n", missed, freezes)
		for _, f := range s.Next {
			fmt.Fprintf(a.streams.Out, "  next  %s\n", fireTime(f, s.TimeZone, now))
		}
		for _, k := range s.Skipped {
			at := k.Trigger
			if at.IsZero() {
				at = k.Time
			}
			fmt.Fprintf(a.streams.Out, "  skipped  %s  %s\n", at.Format(time.RFC3339), oneLine(k.Reason))
		}
	}
	return nil
}

// fireTime shows a fire time in the schedule's zone, with how far off it
// is and the freeze window that will skip it.
func fireTime(f api.FireTime, tz string, now time.Time) string {
	t := f.Time
	if loc, err := time.LoadLocation(tz); err == nil {
		t = t.In(loc)
	}
	s := t.Format("2006-01-02 15:04 MST") + " (in " + age(f.Time, now) + ")"
	if f.Frozen != "" {
		s += " FROZEN by " + f.Frozen
	}
	return s
}

// PauseOptions are the options of "chaosctl pause|resume schedule".
type PauseOptions struct {
	Name   string
	Pause  bool
	Output string
}

// newPauseCommand returns "pause" (pause true) or "resume".
func (a *app) newPauseCommand(pause bool) *cobra.Command {
	verb := map[bool]string{true: "pause", false: "resume"}[pause]
	cmd := &cobra.Command{
		Use:   verb + " schedule NAME",
		Short: map[bool]string{true: "Pause an experiment's schedule without deleting it", false: "Resume a paused schedule"}[pause],
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("%s needs a resource: schedule NAME", verb)
			}
			return usageErrorf("unknown resource %q: use schedule NAME", args[0])
		},
	}
	o := &PauseOptions{Pause: pause}
	sub := &cobra.Command{
		Use:   "schedule NAME",
		Short: cmd.Short,
		Long: map[bool]string{
			true: `Pause the schedule of experiment NAME. chaosd keeps the pause across restarts; while
paused, each trigger is recorded as skipped (reason: the schedule is paused) and no run
starts. Runs on request are not affected. Needs a credential of scope run.`,
			false: `Resume the schedule of experiment NAME: the next trigger fires again. Triggers that came
while it was paused stay recorded as skipped; none is run late.`,
		}[pause],
		Aliases: []string{"schedules", "sched"},
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("%s schedule needs exactly one experiment NAME (got %d arguments)", verb, len(args))
			}
			return nil
		},
		ValidArgsFunction: a.completeExperiments,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Name = args[0]
			if err := validateOutput(o.Output); err != nil {
				return err
			}
			return o.Run(cmd.Context(), a)
		},
	}
	addOutputFlag(sub, &o.Output)
	cmd.AddCommand(sub)
	return cmd
}

// Run pauses or resumes the schedule and says what it is now.
func (o *PauseOptions) Run(ctx context.Context, a *app) error {
	c, conn, err := a.client()
	if err != nil {
		return err
	}
	info, err := call(ctx, a, conn, func(ctx context.Context) (api.ScheduleInfo, error) {
		return c.PauseSchedule(ctx, o.Name, o.Pause)
	})
	verb := map[bool]string{true: "pause", false: "resume"}[o.Pause]
	if err != nil {
		return wrapf(err, "%s schedule %s", verb, o.Name)
	}
	if o.Output != outputText {
		return writeJSON(a.streams.Out, info)
	}
	if info.Paused {
		_, err = fmt.Fprintf(a.streams.Out, "schedule %s paused (%s %s): its triggers are recorded as skipped until 'chaosctl resume schedule %s'\n",
			info.Experiment, info.Cron, info.TimeZone, info.Experiment)
		return err
	}
	next := "no next fire time"
	if len(info.Next) > 0 {
		next = "next " + fireTime(info.Next[0], info.TimeZone, a.now())
	}
	_, err = fmt.Fprintf(a.streams.Out, "schedule %s active (%s %s): %s\n", info.Experiment, info.Cron, info.TimeZone, next)
	return err
}
