package store

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/internal/kubetest"
)

func TestMain(m *testing.M) { kubetest.Main(m) }

// twoReplicas returns two schedule stores on one ConfigMap, each with a
// client of its own (two chaosd replicas), in a fresh namespace.
func twoReplicas(t *testing.T, ns string) (a, b *KubeSchedules, admin kubernetes.Interface) {
	t.Helper()
	srv := kubetest.Shared(t)
	admin = srv.Client()
	if _, err := admin.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	clients := make([]kubernetes.Interface, 2)
	for i := range clients {
		c, err := kubernetes.NewForConfig(srv.Config())
		if err != nil {
			t.Fatal(err)
		}
		clients[i] = c
	}
	return NewKubeSchedules(clients[0], ns, DefaultSchedulesConfigMap), NewKubeSchedules(clients[1], ns, DefaultSchedulesConfigMap), admin
}

func skipAt(exp string, i int) Skip {
	at := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Minute)
	return Skip{Time: at, Experiment: exp, Trigger: at, Cause: api.SkipPaused, Reason: fmt.Sprintf("skip %d", i)}
}

func reasons(t *testing.T, s *KubeSchedules) []string {
	t.Helper()
	skips, err := s.Skips()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range skips {
		out = append(out, k.Experiment+":"+k.Reason)
	}
	return out
}

// TestIntegrationKubeSchedulesTwoWriters makes one replica's write come
// between another's read and write, at the ConfigMap's creation and at
// an update: the second writer reads again and both writes are kept.
// Then both replicas write at once, many times: nothing is lost.
func TestIntegrationKubeSchedulesTwoWriters(t *testing.T) {
	a, b, _ := twoReplicas(t, "sched-two-writers")

	// Both create the ConfigMap: b first, while a is between its read
	// (none yet) and its create.
	var once sync.Once
	a.beforeWrite = func() {
		once.Do(func() {
			if err := b.AddSkip(skipAt("b", 1)); err != nil {
				t.Errorf("b's skip: %v", err)
			}
		})
	}
	if err := a.AddSkip(skipAt("a", 2)); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(reasons(t, b), ","), "b:skip 1,a:skip 2"; got != want {
		t.Errorf("skip log %s, want %s", got, want)
	}
	if a.Conflicts() != 1 {
		t.Errorf("a wrote again %d times, want once", a.Conflicts())
	}

	// b pauses while a, the leader, records a trigger handled: both hold.
	handled := time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)
	pausedAt := handled.Add(time.Minute)
	once = sync.Once{}
	a.beforeWrite = func() {
		once.Do(func() {
			if _, err := b.UpdateScheduleState("cut", func(st *api.ScheduleState) { st.Paused, st.PausedAt = true, &pausedAt }); err != nil {
				t.Errorf("b's pause: %v", err)
			}
		})
	}
	st, err := a.UpdateScheduleState("cut", func(st *api.ScheduleState) { st.HandledUntil, st.LastTrigger = handled, &handled })
	if err != nil {
		t.Fatal(err)
	}
	if !st.Paused || !st.HandledUntil.Equal(handled) {
		t.Errorf("a wrote %+v: lost b's pause or its own trigger", st)
	}
	if got, err := b.ScheduleState("cut"); err != nil || !got.Paused || !got.HandledUntil.Equal(handled) || !got.PausedAt.Equal(pausedAt) {
		t.Errorf("b reads %+v (%v)", got, err)
	}
	if a.Conflicts() != 2 {
		t.Errorf("a wrote again %d times in all, want twice", a.Conflicts())
	}
	a.beforeWrite = nil

	// Both at once: every skip and every state kept.
	const n = 12
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		for _, w := range []struct {
			name string
			s    *KubeSchedules
		}{{"a", a}, {"b", b}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				exp := fmt.Sprintf("%s-%d", w.name, i)
				if err := w.s.AddSkip(skipAt(exp, 100+i)); err != nil {
					t.Errorf("%s: %v", exp, err)
				}
				if _, err := w.s.UpdateScheduleState(exp, func(st *api.ScheduleState) { st.Paused = true }); err != nil {
					t.Errorf("%s: %v", exp, err)
				}
			}()
		}
	}
	wg.Wait()
	got := map[string]bool{}
	for _, r := range reasons(t, a) {
		got[r] = true
	}
	for i := 0; i < n; i++ {
		for _, w := range []string{"a", "b"} {
			exp := fmt.Sprintf("%s-%d", w, i)
			if !got[fmt.Sprintf("%s:skip %d", exp, 100+i)] {
				t.Errorf("skip of %s lost", exp)
			}
			if st, err := a.ScheduleState(exp); err != nil || !st.Paused {
				t.Errorf("state of %s lost: %+v (%v)", exp, st, err)
			}
		}
	}
	t.Logf("writes made again after another writer came first: a %d, b %d", a.Conflicts(), b.Conflicts())
}

// TestIntegrationKubeSchedulesSkipLogBound keeps the newest MaxKubeSkips
// skips and drops the oldest; a long reason is clipped.
func TestIntegrationKubeSchedulesSkipLogBound(t *testing.T) {
	a, _, admin := twoReplicas(t, "sched-bound")
	for i := 0; i < MaxKubeSkips+5; i++ {
		if err := a.AddSkip(skipAt("cut", i)); err != nil {
			t.Fatal(err)
		}
	}
	got := reasons(t, a)
	if len(got) != MaxKubeSkips || got[0] != "cut:skip 5" || got[len(got)-1] != fmt.Sprintf("cut:skip %d", MaxKubeSkips+4) {
		t.Errorf("%d skips kept, from %q to %q; want %d, the newest", len(got), got[0], got[len(got)-1], MaxKubeSkips)
	}
	long := skipAt("cut", 9999)
	long.Reason = strings.Repeat("x", 10*maxSkipReason)
	if err := a.AddSkip(long); err != nil {
		t.Fatal(err)
	}
	skips, _ := a.Skips()
	if r := skips[len(skips)-1].Reason; len(r) > maxSkipReason+len("…") {
		t.Errorf("reason of %d bytes kept", len(r))
	}
	cm, err := admin.CoreV1().ConfigMaps("sched-bound").Get(context.Background(), DefaultSchedulesConfigMap, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if size := len(cm.Data[skipsKey]); size > maxSkipBytes {
		t.Errorf("skip log of %d bytes, bound %d", size, maxSkipBytes)
	}
}
