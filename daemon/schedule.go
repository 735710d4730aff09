package daemon

import (
	"fmt"
	"sort"
	"time"

	"github.com/robfig/cron/v3"
	"go.uber.org/zap"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/daemon/store"
)

// schedule is the cron of experiments with a schedule.
type schedule struct {
	cron    *cron.Cron
	entries map[string]cron.EntryID // by experiment
}

// startSchedules registers every scheduled experiment in its time zone and
// starts the cron.
func (d *Daemon) startSchedules() error {
	c := cron.New(cron.WithLogger(cron.DiscardLogger))
	entries := map[string]cron.EntryID{}
	for name, e := range d.exps {
		sc := e.Spec.Schedule
		if sc == nil {
			continue
		}
		tz := sc.TimeZone
		if tz == "" {
			tz = "UTC"
		}
		id, err := c.AddFunc("CRON_TZ="+tz+" "+sc.Cron, func() { d.trigger(name) })
		if err != nil {
			return fmt.Errorf("schedule of %s: %w", name, err)
		}
		entries[name] = id
	}
	d.sched = schedule{cron: c, entries: entries}
	c.Start()
	return nil
}

// stopSchedules stops the cron and waits for triggers in flight.
func (d *Daemon) stopSchedules() {
	if d.sched.cron != nil {
		<-d.sched.cron.Stop().Done()
	}
}

// trigger is called by the cron. A trigger that finds a run of the same
// experiment still going is recorded as skipped, never silently dropped.
func (d *Daemon) trigger(name string) {
	_, err := d.start(name, api.TriggerSchedule, false)
	if err == nil {
		return
	}
	d.metrics.skipped(name)
	d.lg.Warn("scheduled run skipped", zap.String("experiment", name), zap.Error(err))
	if serr := d.store.AddSkip(store.Skip{Time: time.Now(), Experiment: name, Reason: err.Error()}); serr != nil {
		d.lg.Error("record skipped trigger", zap.Error(serr))
	}
}

// experimentInfos lists the experiments with their schedules and next runs.
func (d *Daemon) experimentInfos() []api.ExperimentInfo {
	out := []api.ExperimentInfo{}
	for name, e := range d.exps {
		info := api.ExperimentInfo{Name: name, Description: e.Metadata.Description, Source: e.Source}
		if s := e.Spec.Schedule; s != nil {
			info.Schedule, info.TimeZone = s.Cron, s.TimeZone
			if id, ok := d.sched.entries[name]; ok && d.sched.cron != nil {
				if next := d.sched.cron.Entry(id).Next; !next.IsZero() {
					info.NextRun = &next
				}
			}
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
