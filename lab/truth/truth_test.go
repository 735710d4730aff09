package truth

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func secs(base int64, rows ...[2]int) []Second {
	out := make([]Second, len(rows))
	for i, r := range rows {
		out[i] = Second{Unix: base + int64(i), OK: r[0], Failed: r[1]}
	}
	return out
}

func TestAnalyze(t *testing.T) {
	const base = 1000
	at := func(i int64) time.Time { return time.Unix(base+i, 0) }
	tests := []struct {
		name               string
		data               []Second
		injected           time.Time
		wantImpact, wantRe time.Time
		wantOK             bool
		wantRTO            time.Duration
		wantErr            error
	}{
		{
			name:       "impact and recovery",
			data:       secs(base, [2]int{20, 0}, [2]int{20, 0}, [2]int{5, 15}, [2]int{0, 20}, [2]int{10, 10}, [2]int{20, 0}, [2]int{20, 0}),
			injected:   at(2).Add(300 * time.Millisecond),
			wantImpact: at(2), wantRe: at(5), wantOK: true, wantRTO: 3 * time.Second,
		},
		{
			name:       "failure just before injection within slack",
			data:       secs(base, [2]int{20, 0}, [2]int{19, 1}, [2]int{0, 20}, [2]int{20, 0}),
			injected:   at(2),
			wantImpact: at(1), wantRe: at(3), wantOK: true, wantRTO: 2 * time.Second,
		},
		{
			name:       "old failures before injection ignored",
			data:       secs(base, [2]int{0, 20}, [2]int{20, 0}, [2]int{20, 0}, [2]int{20, 0}, [2]int{20, 0}),
			injected:   at(3),
			wantImpact: time.Time{}, wantRe: at(1), wantOK: false, wantRTO: 0,
		},
		{
			name:       "flapping: recovery is the final clean run",
			data:       secs(base, [2]int{20, 0}, [2]int{0, 20}, [2]int{20, 0}, [2]int{19, 1}, [2]int{20, 0}, [2]int{20, 0}),
			injected:   at(1),
			wantImpact: at(1), wantRe: at(4), wantOK: true, wantRTO: 3 * time.Second,
		},
		{
			name:       "not recovered",
			data:       secs(base, [2]int{20, 0}, [2]int{0, 20}, [2]int{0, 20}),
			injected:   at(1),
			wantImpact: at(1), wantOK: false, wantErr: ErrNotRecovered,
		},
		{
			name:       "second with no traffic breaks the clean run",
			data:       secs(base, [2]int{20, 0}, [2]int{0, 20}, [2]int{20, 0}, [2]int{0, 0}, [2]int{20, 0}),
			injected:   at(1),
			wantImpact: at(1), wantRe: at(4), wantOK: true, wantRTO: 3 * time.Second,
		},
		{
			name:       "trailing empty seconds ignored",
			data:       secs(base, [2]int{20, 0}, [2]int{0, 20}, [2]int{20, 0}, [2]int{0, 0}, [2]int{0, 0}),
			injected:   at(1),
			wantImpact: at(1), wantRe: at(2), wantOK: true, wantRTO: time.Second,
		},
		{
			name:     "empty",
			injected: at(0),
		},
	}
	// With millisecond columns, impact and recovery are exact: the first
	// failure of the first failing second, the last failure before the
	// final clean run.
	ms := secs(base, [2]int{20, 0}, [2]int{5, 15}, [2]int{0, 20}, [2]int{12, 8}, [2]int{20, 0}, [2]int{20, 0})
	ms[1].FirstFailed, ms[1].LastFailed = at(1).Add(250*time.Millisecond), at(1).Add(990*time.Millisecond)
	ms[2].FirstFailed, ms[2].LastFailed = at(2).Add(10*time.Millisecond), at(2).Add(990*time.Millisecond)
	ms[3].FirstFailed, ms[3].LastFailed = at(3).Add(10*time.Millisecond), at(3).Add(400*time.Millisecond)
	tests = append(tests, struct {
		name               string
		data               []Second
		injected           time.Time
		wantImpact, wantRe time.Time
		wantOK             bool
		wantRTO            time.Duration
		wantErr            error
	}{name: "millisecond precision", data: ms, injected: at(1),
		wantImpact: at(1).Add(250 * time.Millisecond), wantRe: at(3).Add(400 * time.Millisecond), wantOK: true, wantRTO: 2150 * time.Millisecond})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			imp, rec, ok := Analyze(tt.data, tt.injected)
			if !imp.Equal(tt.wantImpact) || !rec.Equal(tt.wantRe) || ok != tt.wantOK {
				t.Fatalf("Analyze = %v, %v, %v; want %v, %v, %v", imp.Unix(), rec.Unix(), ok, tt.wantImpact.Unix(), tt.wantRe.Unix(), tt.wantOK)
			}
			rto, err := RTO(tt.data, tt.injected)
			if !errors.Is(err, tt.wantErr) || rto != tt.wantRTO {
				t.Fatalf("RTO = %v, %v; want %v, %v", rto, err, tt.wantRTO, tt.wantErr)
			}
		})
	}
}

func TestRead(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	got, err := Read(write("good.csv", Header+"\n1000,20,0,0,0\n1001,3,17,1001040,1001980\n1002,2"))
	if err != nil {
		t.Fatal(err)
	}
	want := Second{Unix: 1001, OK: 3, Failed: 17, FirstFailed: time.UnixMilli(1001040), LastFailed: time.UnixMilli(1001980)}
	if len(got) != 2 || got[1] != want {
		t.Fatalf("got %+v (partial last line must be dropped)", got)
	}
	// Files from before the millisecond columns still parse.
	old, err := Read(write("old.csv", "unix_second,ok,failed\n1000,20,0\n1001,3,17\n"))
	if err != nil || len(old) != 2 || old[1] != (Second{Unix: 1001, OK: 3, Failed: 17}) {
		t.Fatalf("3-column file: %+v %v", old, err)
	}
	for name, body := range map[string]string{
		"bad-header.csv": "second,ok,failed\n1000,1,0\n",
		"bad-count.csv":  Header + "\n1000,x,0\n1001,1,0\n",
		"unordered.csv":  Header + "\n1001,1,0\n1000,1,0\n",
		"negative.csv":   Header + "\n1000,-1,0\n1001,1,0\n",
		"bad-ms.csv":     Header + "\n1000,1,1,x,0\n1001,1,0,0,0\n",
	} {
		if _, err := Read(write(name, body)); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: err %v, want an error naming the file", name, err)
		}
	}
	if _, err := Read(filepath.Join(dir, "missing.csv")); err == nil {
		t.Error("missing file accepted")
	}
}

func TestAnalyzeHoldShortCleanTailIsNoRecovery(t *testing.T) {
	const base = 1000
	data := secs(base, [2]int{20, 0}, [2]int{0, 20}, [2]int{0, 20}, [2]int{0, 20}, [2]int{20, 0}, [2]int{20, 0})
	injected := time.Unix(base+1, 0)
	if _, rec, ok := AnalyzeHold(data, injected, 3*time.Second); ok || !rec.IsZero() {
		t.Errorf("2 clean seconds with hold 3s: recovered %v ok %v, want no recovery", rec, ok)
	}
	if _, rec, ok := AnalyzeHold(data, injected, 2*time.Second); !ok || rec.Unix() != base+4 {
		t.Errorf("2 clean seconds with hold 2s: recovered %v ok %v, want recovery at %d", rec, ok, base+4)
	}
}
