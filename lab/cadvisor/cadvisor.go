// Package cadvisor is the lab's stand-in for the kubelet's embedded
// cAdvisor: it exports the memory of the lab's service cgroups under the
// metric names and labels cAdvisor uses in Kubernetes
// (container_memory_working_set_bytes, container_memory_usage_bytes,
// container_spec_memory_limit_bytes with namespace, pod, container), so
// experiments' memory probes read the same in the lab as in a cluster.
package cadvisor

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Container is one container's cgroup.
type Container struct {
	Namespace, Pod, Container, Node string
	// Dir is the cgroup directory (v1 memory controller or v2 unified).
	Dir string
}

// ParseContainer parses "namespace/pod/container@node=/sys/fs/cgroup/...";
// an empty container ("namespace/pod/@node=...") is the pod's own cgroup,
// which cAdvisor exports with container="".
func ParseContainer(s string) (Container, error) {
	id, dir, ok := strings.Cut(s, "=")
	if !ok || dir == "" {
		return Container{}, fmt.Errorf("container %q: want namespace/pod/container@node=CGROUP_DIR", s)
	}
	id, node, _ := strings.Cut(id, "@")
	parts := strings.Split(id, "/")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return Container{}, fmt.Errorf("container %q: want namespace/pod/container@node=CGROUP_DIR", s)
	}
	return Container{Namespace: parts[0], Pod: parts[1], Container: parts[2], Node: node, Dir: filepath.Clean(dir)}, nil
}

// Memory is one reading of a cgroup's memory.
type Memory struct {
	Usage, WorkingSet float64
	// Limit is 0 when the cgroup has none (as cAdvisor reports it).
	Limit float64
}

// Read reads a cgroup directory, v2 (memory.current) or v1
// (memory.usage_in_bytes). Working set = usage − inactive file pages, as
// cAdvisor computes it.
func Read(dir string) (Memory, error) {
	var m Memory
	v2 := fileExists(filepath.Join(dir, "memory.current"))
	usageFile, limitFile, inactiveKey := "memory.usage_in_bytes", "memory.limit_in_bytes", "total_inactive_file"
	if v2 {
		usageFile, limitFile, inactiveKey = "memory.current", "memory.max", "inactive_file"
	}
	usage, err := readNumber(filepath.Join(dir, usageFile))
	if err != nil {
		return m, err
	}
	limit, err := readNumber(filepath.Join(dir, limitFile))
	if err != nil {
		return m, err
	}
	// v1 reports "no limit" as a huge page-aligned number.
	if math.IsInf(limit, 1) || limit >= 1<<62 {
		limit = 0
	}
	stat, err := os.ReadFile(filepath.Join(dir, "memory.stat"))
	if err != nil {
		return m, fmt.Errorf("read memory.stat: %w", err)
	}
	inactive := 0.0
	sc := bufio.NewScanner(bytes.NewReader(stat))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		if k == inactiveKey {
			inactive, _ = strconv.ParseFloat(v, 64)
		}
	}
	m.Usage, m.Limit = usage, limit
	m.WorkingSet = math.Max(0, usage-inactive)
	return m, nil
}

func readNumber(path string) (float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", filepath.Base(path), err)
	}
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return math.Inf(1), nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", filepath.Base(path), err)
	}
	return v, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Collector exports the containers' memory on every scrape.
type Collector struct {
	containers []Container
	workingSet *prometheus.Desc
	usage      *prometheus.Desc
	limit      *prometheus.Desc
}

// NewCollector returns a collector for the containers.
func NewCollector(cs []Container) *Collector {
	labels := []string{"namespace", "pod", "container", "node", "id"}
	return &Collector{
		containers: cs,
		workingSet: prometheus.NewDesc("container_memory_working_set_bytes", "Current working set in bytes.", labels, nil),
		usage:      prometheus.NewDesc("container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of when it was accessed.", labels, nil),
		limit:      prometheus.NewDesc("container_spec_memory_limit_bytes", "Memory limit for the container.", labels, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.workingSet
	ch <- c.usage
	ch <- c.limit
}

// Collect implements prometheus.Collector. A cgroup that cannot be read
// (removed, say) is left out of the scrape, as cAdvisor does.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, ct := range c.containers {
		m, err := Read(ct.Dir)
		if err != nil {
			continue
		}
		lv := []string{ct.Namespace, ct.Pod, ct.Container, ct.Node, ct.Dir}
		ch <- prometheus.MustNewConstMetric(c.workingSet, prometheus.GaugeValue, m.WorkingSet, lv...)
		ch <- prometheus.MustNewConstMetric(c.usage, prometheus.GaugeValue, m.Usage, lv...)
		ch <- prometheus.MustNewConstMetric(c.limit, prometheus.GaugeValue, m.Limit, lv...)
	}
}
