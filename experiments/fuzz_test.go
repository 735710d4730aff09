package experiments

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks Parse never panics, always explains a failure with a
// positioned ErrorList, and only returns experiments that validate.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.yaml")
	lib, _ := filepath.Glob("library/*.yaml")
	for _, p := range append(seeds, lib...) {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("a: *b\n"))
	f.Add([]byte("spec: &s {targets: *s}\n"))
	f.Add([]byte("<<: {apiVersion: x}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := Parse(data, "fuzz.yaml")
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error is not a non-empty ErrorList: %T %v", err, err)
			}
			for _, fe := range list {
				if fe.File != "fuzz.yaml" || fe.Line < 1 || fe.Col < 1 || fe.Msg == "" {
					t.Fatalf("bad entry %#v", fe)
				}
			}
			if e != nil {
				t.Fatal("experiment returned with an error")
			}
			return
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("Parse accepted an experiment that does not validate:\n%v\n%s", err, data)
		}
	})
}
