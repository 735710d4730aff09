package experiments

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// libraryExperiments loads the built-in library's files (the package
// library embeds them; importing it here would be a cycle).
func libraryExperiments(t *testing.T) *Library {
	t.Helper()
	lib, err := LoadLibraryDir("library")
	if err != nil {
		t.Fatal(err)
	}
	return lib
}

// TestSuiteGood loads every testdata/suites/*.good.yaml and checks it
// against the built-in library.
func TestSuiteGood(t *testing.T) {
	lib := libraryExperiments(t)
	files, _ := filepath.Glob("testdata/suites/*.good.yaml")
	if len(files) == 0 {
		t.Fatal("no good suite files")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			s, err := LoadSuiteFile(f)
			if err != nil {
				t.Fatalf("LoadSuiteFile(%s):\n%v", f, err)
			}
			if err := s.CheckLibrary(lib.Experiment, lib.ExperimentNames()); err != nil {
				t.Errorf("CheckLibrary:\n%v", err)
			}
			if err := s.Validate(); err != nil {
				t.Errorf("a loaded suite must validate again:\n%v", err)
			}
		})
	}
}

// TestSuiteBad loads every testdata/suites/*.bad.yaml, checks it against
// the built-in library when it parses, and compares the whole error
// text with NAME.bad.yaml.err (go test -update rewrites them).
func TestSuiteBad(t *testing.T) {
	lib := libraryExperiments(t)
	files, _ := filepath.Glob("testdata/suites/*.bad.yaml")
	if len(files) == 0 {
		t.Fatal("no bad suite files")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			s, err := LoadSuiteFile(f)
			if err == nil {
				err = s.CheckLibrary(lib.Experiment, lib.ExperimentNames())
			}
			if err == nil {
				t.Fatalf("%s: no error", f)
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("error is %T, want ErrorList: %v", err, err)
			}
			for _, fe := range list {
				if fe.File != f || fe.Line < 1 || fe.Path == "" {
					t.Errorf("entry without file, position or field: %#v", fe)
				}
			}
			got := err.Error() + "\n"
			golden := f + ".err"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden (go test -update creates it): %v", err)
			}
			if got != string(want) {
				t.Errorf("errors differ from %s\ngot:\n%s\nwant:\n%s", golden, got, want)
			}
		})
	}
}

func TestSuiteDefaultsAndGap(t *testing.T) {
	lib := libraryExperiments(t)
	s, err := LoadSuiteFile("testdata/suites/minimal.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !s.StopsOnFailure() {
		t.Error("stopOnFailure left out: want true")
	}
	part, _ := lib.Experiment("partition-c1-c2")
	if got, want := s.Gap(part), 31*time.Second; got != want {
		t.Errorf("automatic gap before partition-c1-c2 = %s, want its baseline + probe interval = %s", got, want)
	}
	gd, err := LoadSuiteFile("testdata/suites/game-day.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := gd.Gap(part); got != time.Minute {
		t.Errorf("explicit gap = %s, want 1m", got)
	}
	if got := gd.Spec.Schedule.FreezeWindows[0].TimeZone; got != "Europe/Berlin" {
		t.Errorf("freeze window zone = %q, want the schedule's", got)
	}
	if got := strings.Join(gd.Names(), ","); got != "latency-c1-c2,exceptions-visits,partition-c1-c2" {
		t.Errorf("names = %s", got)
	}
}

// TestLibraryDirWithSuites: a directory of experiments and suites loads
// both; a suite naming an experiment of no file, or a second suite of
// the same name, fails the whole load with the files' positions; a
// suite file given to the experiment loader is refused by kind.
func TestLibraryDirWithSuites(t *testing.T) {
	dir := t.TempDir()
	copyFile := func(src, dst string) {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, dst), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	copyFile("library/partition-c1-c2.yaml", "partition.yaml")
	copyFile("testdata/suites/minimal.good.yaml", "suite.yaml")
	lib, err := LoadLibraryDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(lib.Experiments) != 1 || len(lib.Suites) != 1 || lib.Suites[0].Metadata.Name != "minimal" {
		t.Fatalf("loaded %d experiments, %d suites; want 1 and 1 (minimal)", len(lib.Experiments), len(lib.Suites))
	}
	if exps, err := LoadDir(dir); err != nil || len(exps) != 1 {
		t.Errorf("LoadDir = %d experiments, %v; want the one experiment", len(exps), err)
	}

	copyFile("testdata/suites/minimal.good.yaml", "suite2.yaml")
	copyFile("testdata/suites/game-day.good.yaml", "game-day.yaml")
	_, err = LoadLibraryDir(dir)
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	for _, want := range []string{
		filepath.Join(dir, "game-day.yaml") + `:9:19: spec.experiments[0].experiment: unknown experiment "latency-c1-c2" (the library has partition-c1-c2)`,
		filepath.Join(dir, "suite2.yaml") + `:4:9: metadata.name: duplicate suite name "minimal": also defined at ` + filepath.Join(dir, "suite.yaml") + ":4:9",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("load error lacks\n  %s\ngot:\n%s", want, msg)
		}
	}

	if _, err := LoadFile("testdata/suites/minimal.good.yaml"); err == nil || !strings.Contains(err.Error(), "kind: must be Experiment, not \"Suite\"") {
		t.Errorf("LoadFile of a suite = %v, want a kind error", err)
	}
}

// TestValidateFilesSuites: validate checks suites against the
// experiments among the files, else against the library given.
func TestValidateFilesSuites(t *testing.T) {
	lib := func() ([]*Experiment, error) { return libraryExperiments(t).Experiments, nil }
	if err := ValidateFilesAgainst([]string{"testdata/suites/game-day.good.yaml"}, lib); err != nil {
		t.Errorf("game-day against the library: %v", err)
	}
	err := ValidateFilesAgainst([]string{"testdata/suites/game-day.good.yaml", "testdata/minimal.good.yaml"}, lib)
	if err == nil || !strings.Contains(err.Error(), `spec.experiments[0].experiment: unknown experiment "latency-c1-c2"`) {
		t.Errorf("game-day with one other experiment: %v, want unknown experiment", err)
	}
	if err := ValidateFiles([]string{"testdata/suites/library.bad.yaml"}); err != nil {
		t.Errorf("without a library, names are not checked: %v", err)
	}
}
