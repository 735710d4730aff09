package experiments_test

import (
	"testing"

	"github.com/chaosd/chaosd/experiments/library"
)

// BenchmarkLoadLibrary measures strict decoding, defaults and validation of
// every built-in experiment (what chaosd does at start-up).
func BenchmarkLoadLibrary(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if _, err := library.Load(); err != nil {
			b.Fatal(err)
		}
	}
}
