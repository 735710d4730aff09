package kubepod

import (
	"slices"
	"strings"
	"testing"

	"github.com/chaosd/chaosd/agent/agentapi"
)

const uid = "7f3c1a2e-95b4-4c1d-8e0f-0a1b2c3d4e5f"

func TestPodCgroups(t *testing.T) {
	for _, tc := range []struct {
		name   string
		driver CgroupDriver
		qos    string
		want   []string
	}{
		{"cgroupfs guaranteed", DriverCgroupfs, Guaranteed, []string{"kubepods/pod" + uid}},
		{"cgroupfs burstable", DriverCgroupfs, Burstable, []string{"kubepods/burstable/pod" + uid}},
		{"cgroupfs besteffort", DriverCgroupfs, BestEffort, []string{"kubepods/besteffort/pod" + uid}},
		{"systemd guaranteed", DriverSystemd, Guaranteed,
			[]string{"kubepods.slice/kubepods-pod7f3c1a2e_95b4_4c1d_8e0f_0a1b2c3d4e5f.slice"}},
		{"systemd burstable", DriverSystemd, Burstable,
			[]string{"kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod7f3c1a2e_95b4_4c1d_8e0f_0a1b2c3d4e5f.slice"}},
		{"systemd besteffort", DriverSystemd, BestEffort,
			[]string{"kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod7f3c1a2e_95b4_4c1d_8e0f_0a1b2c3d4e5f.slice"}},
		{"cgroupfs unknown qos", DriverCgroupfs, "", []string{
			"kubepods/burstable/pod" + uid, "kubepods/besteffort/pod" + uid, "kubepods/pod" + uid}},
		{"auto guaranteed", DriverAuto, Guaranteed, []string{
			"kubepods/pod" + uid, "kubepods.slice/kubepods-pod7f3c1a2e_95b4_4c1d_8e0f_0a1b2c3d4e5f.slice"}},
		{"empty driver is auto", "", BestEffort, []string{
			"kubepods/besteffort/pod" + uid,
			"kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod7f3c1a2e_95b4_4c1d_8e0f_0a1b2c3d4e5f.slice"}},
	} {
		for _, v := range []int{1, 2} {
			t.Run(tc.name, func(t *testing.T) {
				got, err := Layout{Driver: tc.driver, Version: v}.PodCgroups(agentapi.Pod{UID: uid, QOSClass: tc.qos})
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got, tc.want) {
					t.Errorf("v%d:\n got %q\nwant %q", v, got, tc.want)
				}
			})
		}
	}
}

func TestPodCgroupsRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		l    Layout
		pod  agentapi.Pod
		want string
	}{
		{"no uid", Layout{DriverAuto, 2}, agentapi.Pod{}, "pod.uid: required"},
		{"path in uid", Layout{DriverAuto, 2}, agentapi.Pod{UID: "../../etc"}, "pod.uid:"},
		{"slash in uid", Layout{DriverAuto, 2}, agentapi.Pod{UID: "a/b"}, "pod.uid:"},
		{"bad qos", Layout{DriverAuto, 2}, agentapi.Pod{UID: uid, QOSClass: "guaranteed"}, "pod.qosClass:"},
		{"bad container id", Layout{DriverAuto, 2}, agentapi.Pod{UID: uid, ContainerIDs: []string{"containerd://../x"}}, "pod.containerIds[0]:"},
		{"bad driver", Layout{"docker", 2}, agentapi.Pod{UID: uid}, `cgroup driver "docker"`},
		{"bad version", Layout{DriverAuto, 3}, agentapi.Pod{UID: uid}, "cgroup version 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.l.PodCgroups(tc.pod)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestContainerCgroups(t *testing.T) {
	const id = "0123abcd"
	for _, tc := range []struct {
		pod, id string
		want    []string
	}{
		{"kubepods/burstable/podX", id, []string{"kubepods/burstable/podX/0123abcd", "kubepods/burstable/podX/crio-0123abcd"}},
		{"kubepods/podX", "containerd://" + id, []string{"kubepods/podX/0123abcd", "kubepods/podX/crio-0123abcd"}},
		{"kubepods.slice/kubepods-podX.slice", "cri-o://" + id, []string{
			"kubepods.slice/kubepods-podX.slice/cri-containerd-0123abcd.scope",
			"kubepods.slice/kubepods-podX.slice/crio-0123abcd.scope",
			"kubepods.slice/kubepods-podX.slice/docker-0123abcd.scope"}},
	} {
		if got := ContainerCgroups(tc.pod, tc.id); !slices.Equal(got, tc.want) {
			t.Errorf("ContainerCgroups(%q, %q):\n got %q\nwant %q", tc.pod, tc.id, got, tc.want)
		}
	}
}

func TestForeign(t *testing.T) {
	for name, want := range map[string]bool{
		"chaosd-mem-1": true, "crio-conmon-abc.scope": true, "crio-conmon-abc": true,
		"crio-abc.scope": false, "abc": false, "cri-containerd-abc.scope": false,
	} {
		if Foreign(name) != want {
			t.Errorf("Foreign(%q) = %v", name, !want)
		}
	}
}

func TestParseDriver(t *testing.T) {
	for in, want := range map[string]CgroupDriver{"": DriverAuto, "auto": DriverAuto, "cgroupfs": DriverCgroupfs, "systemd": DriverSystemd} {
		if got, err := ParseDriver(in); err != nil || got != want {
			t.Errorf("ParseDriver(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseDriver("Systemd"); err == nil {
		t.Error("ParseDriver accepted Systemd")
	}
}
