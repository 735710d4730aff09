package experiments

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/chaosd/chaosd/agent/agentapi"
)

// sampleFaults holds one valid fault of every kind.
func sampleFaults() map[agentapi.Kind]Fault {
	cidrs := []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}
	return map[agentapi.Kind]Fault{
		agentapi.KindPartition: {Name: "cut", Kind: agentapi.KindPartition, Partition: &PartitionParams{CIDRs: cidrs, Direction: DirectionEgress, Ports: []uint16{8082}}},
		agentapi.KindLatency: {Name: "slow-tgw", Kind: agentapi.KindLatency, Latency: &LatencyParams{
			CIDRs: cidrs, Ports: []uint16{8082},
			Delay: Duration(200 * time.Millisecond), Jitter: Duration(20 * time.Millisecond),
			Correlation: 25, Loss: 1.5, Rate: 1250000, Interface: "eth0"}},
		agentapi.KindMemory:    {Name: "fill", Kind: agentapi.KindMemory, Memory: &MemoryParams{Fraction: 0.5, Ramp: Duration(100 * time.Millisecond)}},
		agentapi.KindException: {Name: "boom", Kind: agentapi.KindException, Exception: &ExceptionParams{Level: 3, Watchers: []string{"service"}, Exception: &SpringException{Type: "java.lang.IllegalStateException", Arguments: []SpringExceptionArg{{Type: "java.lang.String", Value: "x"}}}}},
		agentapi.KindAppLatency: {Name: "lag", Kind: agentapi.KindAppLatency, AppLatency: &AppLatencyParams{Level: 2,
			Range: LatencyRange{Start: Duration(time.Second), End: Duration(2 * time.Second)}}},
	}
}

// TestKindsTable keeps the table, the Fault struct and the wire form in
// step: every kind has a parameter block in Fault under its YAML key, a
// sample of it converts to a wire fault with exactly its own block, and
// the table lists every kind once.
func TestKindsTable(t *testing.T) {
	blocks := map[string]bool{}
	ft := reflect.TypeFor[Fault]()
	for i := range ft.NumField() {
		f := ft.Field(i)
		if f.Type.Kind() == reflect.Pointer {
			blocks[strings.Split(f.Tag.Get("yaml"), ",")[0]] = true
		}
	}
	if len(blocks) != len(kinds) {
		t.Errorf("Fault has %d parameter blocks, the table %d kinds", len(blocks), len(kinds))
	}
	samples := sampleFaults()
	seen := map[agentapi.Kind]bool{}
	for _, k := range kinds {
		if seen[k.name] {
			t.Errorf("kind %s listed twice", k.name)
		}
		seen[k.name] = true
		if !blocks[k.field] {
			t.Errorf("kind %s: Fault has no block %q", k.name, k.field)
		}
		f, ok := samples[k.name]
		if !ok {
			t.Errorf("kind %s: no sample in this test", k.name)
			continue
		}
		if !k.set(&f) {
			t.Errorf("kind %s: set() is false for its own sample", k.name)
		}
		wire, err := f.ToAgent(Placement{Node: "n1", Instance: "visits-0", URL: "http://10.1.1.10:8082", Cgroup: "lab/visits-0"})
		if err != nil {
			t.Fatalf("kind %s: %v", k.name, err)
		}
		n := 0
		v := reflect.ValueOf(wire)
		for i := range v.NumField() {
			if v.Field(i).Kind() == reflect.Pointer && !v.Field(i).IsNil() {
				n++
			}
		}
		if wire.Kind != k.name || n != 1 {
			t.Errorf("kind %s: wire fault has kind %s and %d parameter blocks, want 1", k.name, wire.Kind, n)
		}
	}
	if len(Kinds()) != len(samples) {
		t.Errorf("Kinds() = %v, want the %d kinds", Kinds(), len(samples))
	}
}

func TestToAgent(t *testing.T) {
	s := sampleFaults()
	f := s[agentapi.KindLatency]
	af, err := f.ToAgent(Placement{Node: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	l := af.Latency
	if l.DelayMs != 200 || l.JitterMs != 20 || l.CorrelationPercent != 25 || l.LossPercent != 1.5 ||
		l.RateBytesPerSecond != 1250000 || l.Interface != "eth0" || l.CIDRs[0] != "10.1.0.0/16" || l.Ports[0] != 8082 {
		t.Fatalf("latency translated to %+v", l)
	}
	f = s[agentapi.KindPartition]
	af, _ = f.ToAgent(Placement{Node: "n1"})
	if p := af.Partition; p.Direction != "egress" || p.CIDRs[0] != "10.1.0.0/16" || p.Ports[0] != 8082 {
		t.Errorf("partition translated to %+v", p)
	}
	f = s[agentapi.KindMemory]
	af, _ = f.ToAgent(Placement{Node: "n1", Instance: "c-0", Cgroup: "lab/c-0"})
	if m := af.Memory; m.Fraction != 0.5 || m.RampSeconds != 0.1 || m.Cgroup != "lab/c-0" {
		t.Errorf("memory translated to %+v", m)
	}
	f = s[agentapi.KindException]
	af, _ = f.ToAgent(Placement{Node: "n1", Instance: "v-0", URL: "http://v:8082"})
	if sb := af.SpringBoot; sb.URL != "http://v:8082" || sb.Level != 3 || sb.Exception.Arguments[0].Value != "x" || sb.Watchers[0] != "service" {
		t.Errorf("exception translated to %+v", sb)
	}
	f = s[agentapi.KindAppLatency]
	af, _ = f.ToAgent(Placement{Node: "n1", Instance: "v-0", URL: "http://v:8082"})
	if sb := af.SpringBoot; sb.LatencyRangeStartMs != 1000 || sb.LatencyRangeEndMs != 2000 || sb.Level != 2 {
		t.Errorf("app-latency translated to %+v", sb)
	}

	// Spring Boot kinds need an instance with a URL; unknown kinds and a
	// missing block are refused, naming the fault.
	f = s[agentapi.KindException]
	if _, err := f.ToAgent(Placement{Node: "n1"}); err == nil || !strings.Contains(err.Error(), "fault boom: kind exception needs a service instance") {
		t.Errorf("exception on a node: err %v", err)
	}
	if _, err := (&Fault{Name: "x", Kind: "fire"}).ToAgent(Placement{}); err == nil || !strings.Contains(err.Error(), `kind "fire" is not supported`) {
		t.Errorf("unknown kind: err %v", err)
	}
	if _, err := (&Fault{Name: "x", Kind: agentapi.KindMemory}).ToAgent(Placement{}); err == nil || !strings.Contains(err.Error(), "memory: required") {
		t.Errorf("missing block: err %v", err)
	}
}
