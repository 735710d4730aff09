package daemon

import (
	"sync"
	"time"

	"github.com/robfig/cron/v3"
	"go.uber.org/zap"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/daemon/store"
)

// schedule is the cron of experiments with a schedule. It runs only while
// this chaosd leads.
type schedule struct {
	mu      sync.Mutex
	cron    *cron.Cron              // nil: not leading
	entries map[string]cron.EntryID // by experiment
	specs   map[string]string       // by experiment: the spec of its entry
}

// startSchedules starts the cron with every scheduled experiment.
func (d *Daemon) startSchedules() {
	d.sched.mu.Lock()
	if d.sched.cron == nil {
		d.sched.cron = cron.New(cron.WithLogger(cron.DiscardLogger))
		d.sched.entries, d.sched.specs = map[string]cron.EntryID{}, map[string]string{}
		d.sched.cron.Start()
	}
	d.sched.mu.Unlock()
	d.syncSchedules()
}

// syncSchedules makes the cron's entries match the catalog (experiments
// come and go in Kubernetes mode). An experiment whose schedule cannot be
// parsed is logged and left out; validation already checked it.
func (d *Daemon) syncSchedules() {
	d.sched.mu.Lock()
	defer d.sched.mu.Unlock()
	c := d.sched.cron
	if c == nil {
		return
	}
	want := map[string]string{}
	for _, e := range d.exps.all() {
		if sc := e.Spec.Schedule; sc != nil {
			tz := sc.TimeZone
			if tz == "" {
				tz = "UTC"
			}
			want[e.Metadata.Name] = "CRON_TZ=" + tz + " " + sc.Cron
		}
	}
	for name, id := range d.sched.entries {
		if want[name] != d.sched.specs[name] {
			c.Remove(id)
			delete(d.sched.entries, name)
			delete(d.sched.specs, name)
		}
	}
	for name, spec := range want {
		if _, ok := d.sched.entries[name]; ok {
			continue
		}
		id, err := c.AddFunc(spec, func() { d.trigger(name) })
		if err != nil {
			d.lg.Error("schedule not registered", zap.String("experiment", name), zap.Error(err))
			continue
		}
		d.sched.entries[name], d.sched.specs[name] = id, spec
	}
}

// stopSchedules stops the cron and waits for triggers in flight.
func (d *Daemon) stopSchedules() {
	d.sched.mu.Lock()
	c := d.sched.cron
	d.sched.cron = nil
	d.sched.mu.Unlock()
	if c != nil {
		<-c.Stop().Done()
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
	if serr := d.skips.AddSkip(store.Skip{Time: time.Now(), Experiment: name, Reason: err.Error()}); serr != nil {
		d.lg.Error("record skipped trigger", zap.Error(serr))
	}
}

// experimentInfos lists the experiments with their schedules and next runs.
func (d *Daemon) experimentInfos() []api.ExperimentInfo {
	out := []api.ExperimentInfo{}
	d.sched.mu.Lock()
	defer d.sched.mu.Unlock()
	for _, e := range d.exps.all() {
		name := e.Metadata.Name
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
	return out
}
