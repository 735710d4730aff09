package cadvisor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func write(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReadV1AndV2(t *testing.T) {
	v1 := t.TempDir()
	write(t, v1, map[string]string{
		"memory.usage_in_bytes": "300000000\n",
		"memory.limit_in_bytes": "536870912\n",
		"memory.stat":           "cache 1000\ntotal_inactive_file 100000000\n",
	})
	m, err := Read(v1)
	if err != nil || m.Usage != 3e8 || m.WorkingSet != 2e8 || m.Limit != 536870912 {
		t.Fatalf("v1: %+v %v", m, err)
	}
	v2 := t.TempDir()
	write(t, v2, map[string]string{
		"memory.current": "1000\n",
		"memory.max":     "max\n",
		"memory.stat":    "anon 900\ninactive_file 2000\n",
	})
	m, err = Read(v2)
	if err != nil || m.Usage != 1000 || m.WorkingSet != 0 || m.Limit != 0 {
		t.Fatalf("v2 (no limit, working set never negative): %+v %v", m, err)
	}
	noLimitV1 := t.TempDir()
	write(t, noLimitV1, map[string]string{
		"memory.usage_in_bytes": "10\n", "memory.limit_in_bytes": "9223372036854771712\n", "memory.stat": "",
	})
	if m, _ := Read(noLimitV1); m.Limit != 0 {
		t.Errorf("v1 unlimited reads as %v, want 0", m.Limit)
	}
	if _, err := Read(t.TempDir()); err == nil {
		t.Error("empty dir read without error")
	}
}

func TestCollectorNamesAndLabels(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{"memory.current": "4096\n", "memory.max": "8192\n", "memory.stat": "inactive_file 0\n"})
	c, err := ParseContainer("petclinic/customers-service-0/customers-service@c1-n2=" + dir)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector([]Container{c, {Namespace: "x", Pod: "gone", Container: "y", Dir: "/nonexistent"}}))
	want := `
# HELP container_memory_working_set_bytes Current working set in bytes.
# TYPE container_memory_working_set_bytes gauge
container_memory_working_set_bytes{container="customers-service",id="` + dir + `",namespace="petclinic",node="c1-n2",pod="customers-service-0"} 4096
# HELP container_spec_memory_limit_bytes Memory limit for the container.
# TYPE container_spec_memory_limit_bytes gauge
container_spec_memory_limit_bytes{container="customers-service",id="` + dir + `",namespace="petclinic",node="c1-n2",pod="customers-service-0"} 8192
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "container_memory_working_set_bytes", "container_spec_memory_limit_bytes"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "a/b=/x", "a/b/c", "a//c=/x"} {
		if _, err := ParseContainer(bad); err == nil {
			t.Errorf("ParseContainer(%q) accepted", bad)
		}
	}
}
