package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/util/retry"

	"github.com/chaosd/chaosd/api"
)

// DefaultSchedulesConfigMap names the ConfigMap of schedule state and
// skipped triggers in Kubernetes mode.
const DefaultSchedulesConfigMap = "chaosd-schedules"

// The ConfigMap's keys: the same formats as the data directory's files.
const (
	schedulesKey = schedulesFile // JSON object: schedule name → api.ScheduleState
	skipsKey     = "skips.jsonl" // one api.SkipInfo per line, oldest first
)

// Bounds of the skip log kept in the ConfigMap (an object is at most
// 1 MiB): the newest MaxKubeSkips skips, and no more than maxSkipBytes of
// them; the oldest are dropped first. A skip's reason is clipped to
// maxSkipReason bytes.
const (
	MaxKubeSkips  = 500
	maxSkipBytes  = 512 << 10
	maxSkipReason = 1024
)

// writeBackoff spaces the attempts of a write that found another writer
// had come first (the object's resourceVersion changed).
var writeBackoff = wait.Backoff{Steps: 10, Duration: 10 * time.Millisecond, Factor: 2, Jitter: 0.5, Cap: time.Second}

// KubeSchedules keeps the schedules' state and the skip log in one
// ConfigMap in chaosd's namespace, so that a pod restart or a new leader
// finds the pauses, the last trigger each schedule handled (the missed
// runs policy counts from it) and the skipped triggers. Every write is
// read, change, write with the object's resourceVersion, retried when
// another writer came first: the leader's scheduler writes triggers and
// skips, any replica writes a pause. Reads go to the API server (a
// quorum read), so a pause written by one replica is what the next
// reader sees. It is safe for concurrent use.
type KubeSchedules struct {
	cms  typedcorev1.ConfigMapInterface
	name string

	conflicts atomic.Int64
	// beforeWrite, when set, runs between a write's read and its write
	// (tests make another writer come first there).
	beforeWrite func()
}

// NewKubeSchedules returns the schedule store of the ConfigMap name in
// namespace (created on the first write).
func NewKubeSchedules(client kubernetes.Interface, namespace, name string) *KubeSchedules {
	return &KubeSchedules{cms: client.CoreV1().ConfigMaps(namespace), name: name}
}

// Conflicts counts the writes that found another writer had come first
// and were made again.
func (k *KubeSchedules) Conflicts() int64 { return k.conflicts.Load() }

// ScheduleState returns an experiment's schedule state (zero when none
// is kept).
func (k *KubeSchedules) ScheduleState(experiment string) (api.ScheduleState, error) {
	cm, err := k.get()
	if err != nil || cm == nil {
		return api.ScheduleState{}, err
	}
	all, err := k.states(cm)
	return all[experiment], err
}

// UpdateScheduleState changes an experiment's schedule state in the
// ConfigMap and returns the state written.
func (k *KubeSchedules) UpdateScheduleState(experiment string, change func(*api.ScheduleState)) (api.ScheduleState, error) {
	var st api.ScheduleState
	err := k.update(func(cm *corev1.ConfigMap) error {
		all, err := k.states(cm)
		if err != nil {
			return err
		}
		st = all[experiment]
		change(&st)
		all[experiment] = st
		data, err := json.MarshalIndent(all, "", "  ")
		if err != nil {
			return fmt.Errorf("encode schedule state: %w", err)
		}
		cm.Data[schedulesKey] = string(data)
		return nil
	})
	return st, err
}

// AddSkip adds a skipped trigger to the skip log, dropping the oldest
// beyond the bounds.
func (k *KubeSchedules) AddSkip(s Skip) error {
	if len(s.Reason) > maxSkipReason {
		s.Reason = strings.ToValidUTF8(s.Reason[:maxSkipReason], "") + "…"
	}
	line, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode skip: %w", err)
	}
	return k.update(func(cm *corev1.ConfigMap) error {
		lines := skipLines(cm.Data[skipsKey])
		lines = append(lines, string(line))
		size := 0
		keep := len(lines)
		for i := len(lines) - 1; i >= 0; i-- {
			if len(lines)-i > MaxKubeSkips || size+len(lines[i])+1 > maxSkipBytes {
				break
			}
			size += len(lines[i]) + 1
			keep = i
		}
		cm.Data[skipsKey] = strings.Join(lines[keep:], "\n") + "\n"
		return nil
	})
}

// Skips returns the skips kept, oldest first.
func (k *KubeSchedules) Skips() ([]Skip, error) {
	cm, err := k.get()
	if err != nil || cm == nil {
		return nil, err
	}
	var out []Skip
	for _, l := range skipLines(cm.Data[skipsKey]) {
		var s Skip
		if json.Unmarshal([]byte(l), &s) == nil {
			out = append(out, s)
		}
	}
	return out, nil
}

func skipLines(data string) []string {
	var out []string
	for _, l := range strings.Split(data, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

// get reads the ConfigMap (nil when there is none yet).
func (k *KubeSchedules) get() (*corev1.ConfigMap, error) {
	ctx, cancel := context.WithTimeout(context.Background(), kubeCallTimeout)
	defer cancel()
	cm, err := k.cms.Get(ctx, k.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read schedule state (ConfigMap %s): %w", k.name, err)
	}
	return cm, nil
}

func (k *KubeSchedules) states(cm *corev1.ConfigMap) (map[string]api.ScheduleState, error) {
	all := map[string]api.ScheduleState{}
	data := cm.Data[schedulesKey]
	if strings.TrimSpace(data) == "" {
		return all, nil
	}
	if err := json.Unmarshal([]byte(data), &all); err != nil {
		return map[string]api.ScheduleState{}, fmt.Errorf("decode schedule state (ConfigMap %s, key %s): %w", k.name, schedulesKey, err)
	}
	return all, nil
}

// update reads the ConfigMap, applies change and writes it with the
// resourceVersion read (creating it when there is none), again from the
// read when another writer came first.
func (k *KubeSchedules) update(change func(*corev1.ConfigMap) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*kubeCallTimeout)
	defer cancel()
	attempt := 0
	err := retry.OnError(writeBackoff, func(err error) bool {
		return apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)
	}, func() error {
		if attempt++; attempt > 1 {
			k.conflicts.Add(1)
		}
		cm, err := k.cms.Get(ctx, k.name, metav1.GetOptions{})
		exists := err == nil
		switch {
		case apierrors.IsNotFound(err):
			cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: k.name, Labels: map[string]string{
				"app.kubernetes.io/name": "chaosd", "app.kubernetes.io/part-of": "chaosd", "app.kubernetes.io/component": "schedules"}}}
		case err != nil:
			return fmt.Errorf("read ConfigMap %s: %w", k.name, err)
		}
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		if err := change(cm); err != nil {
			return err
		}
		if k.beforeWrite != nil {
			k.beforeWrite()
		}
		if exists {
			_, err = k.cms.Update(ctx, cm, metav1.UpdateOptions{FieldManager: "chaosd"})
		} else {
			_, err = k.cms.Create(ctx, cm, metav1.CreateOptions{FieldManager: "chaosd"})
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("write schedule state (ConfigMap %s): %w", k.name, err)
	}
	return nil
}
