package agentapi

// SpringWatchers are the watchers of Chaos Monkey for Spring Boot
// (chaos.monkey.watcher.*): the component types an assault attacks, spelled
// as its properties are. The spec validator and the agent's driver both
// accept exactly these.
var SpringWatchers = []string{
	"controller", "restController", "service", "repository", "component",
	"restTemplate", "webClient", "actuatorHealth",
}

// DefaultSpringWatchers are enabled when a fault names none.
var DefaultSpringWatchers = []string{"restController", "service"}

// SpringLevel bounds: 1 in Level requests is attacked.
const (
	MinSpringLevel = 1
	MaxSpringLevel = 10000
)
