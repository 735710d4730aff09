package lab

import (
	"strings"
	"testing"
	"time"
)

func TestReadyQueriesCoverSixScrapes(t *testing.T) {
	for _, tc := range []struct {
		scrape time.Duration
		window string
	}{
		{ScrapeInterval, "[6s]"},
		{time.Second, "[6s]"},
		{2 * time.Second, "[12s]"},
	} {
		qs := readyQueries(tc.scrape)
		if len(qs) != 3 {
			t.Fatalf("%d ready queries, want one per hop (3)", len(qs))
		}
		for _, q := range qs {
			// six samples must fit the window at this scrape interval
			if !strings.Contains(q, tc.window+") >= 6") {
				t.Errorf("scrape interval %s: query %s, want window %s and six samples", tc.scrape, q, tc.window)
			}
		}
	}
}
