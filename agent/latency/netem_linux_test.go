package latency

import "github.com/vishvananda/netlink"

// netemLatencyUs returns a netem qdisc's delay in microseconds: QdiscList
// reports it in kernel ticks.
func netemLatencyUs(q netlink.Qdisc) uint32 {
	n, ok := q.(*netlink.Netem)
	if !ok {
		return 0
	}
	return uint32(float64(n.Latency)/netlink.TickInUsec() + 0.5)
}
