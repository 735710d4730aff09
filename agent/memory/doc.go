// Package memory is the node agent's "memory" fault: it starts a stressor
// process (the agent's own binary in a hidden mode, see StressorMain) inside
// a target cgroup, where it allocates and touches anonymous pages up to a
// size, or a fraction of the cgroup's memory limit (of node memory when the
// cgroup has none), spread over a ramp, and holds them until the fault is
// reverted.
//
// Safety rests on five independent mechanisms, so a stressor never outlives
// its fault:
//
//   - PR_SET_PDEATHSIG=SIGKILL (set at fork by the driver and again by the
//     stressor, which then checks its parent is still the agent that
//     started it);
//   - a stdin lifeline: the stressor exits when its stdin pipe, held only
//     by the agent, reaches EOF;
//   - its own deadline: the fault's lease end plus Margin, moved by each
//     renewal the agent writes on the lifeline ("renew <ms>"); without one
//     it exits, so even a hung agent's stressor ends one lease after the
//     last renewal (the driver implements the agent's SelfExpiring);
//   - the ledger state records the PID and its start time (field 22 of
//     /proc/PID/stat) and the boot ID: Revert kills a PID only when the
//     start time and the fault marker on its command line both match;
//   - every stressor's argv carries --chaosd-memory-stressor,
//     --chaosd-owner=<owner> and --chaosd-fault-id=<id>, so Prune finds
//     stressors no active fault owns (e.g. left by an agent that crashed
//     between starting one and writing the ledger).
//
// Both cgroup v1 (memory controller hierarchy) and cgroup v2 (unified) are
// supported; see README.md for the details and the OOM behaviour.
package memory
