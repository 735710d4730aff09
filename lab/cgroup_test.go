package lab

import (
	"slices"
	"testing"
)

func TestSubtreeFromIsRootFirst(t *testing.T) {
	for _, tc := range []struct {
		name, root, dir string
		want            []string
	}{
		{name: "nested", root: "/sys/fs/cgroup", dir: "/sys/fs/cgroup/chaosd-lab/lab",
			want: []string{"/sys/fs/cgroup", "/sys/fs/cgroup/chaosd-lab", "/sys/fs/cgroup/chaosd-lab/lab"}},
		{name: "root itself", root: "/sys/fs/cgroup", dir: "/sys/fs/cgroup", want: []string{"/sys/fs/cgroup"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// cgroup v2 enables a controller in a child's subtree_control
			// only once the parent passed it down: root first.
			if got := subtreeFrom(tc.root, tc.dir); !slices.Equal(got, tc.want) {
				t.Errorf("subtreeFrom(%s, %s) = %v, want %v", tc.root, tc.dir, got, tc.want)
			}
		})
	}
}
