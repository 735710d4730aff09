package prom

import (
	"testing"
	"time"
)

func TestMaxScrapeInterval(t *testing.T) {
	tests := []struct {
		name, conf string
		want       time.Duration
		wantErr    bool
	}{
		{"global only", "global:\n  scrape_interval: 15s\n", 15 * time.Second, false},
		{"default", "global: {}\n", time.Minute, false},
		{"jobs override", "global:\n  scrape_interval: 1s\nscrape_configs:\n- job_name: a\n  scrape_interval: 250ms\n- job_name: b\n", time.Second, false},
		{"longest job", "global:\n  scrape_interval: 1s\nscrape_configs:\n- job_name: a\n  scrape_interval: 250ms\n- job_name: b\n  scrape_interval: 500ms\n", 500 * time.Millisecond, false},
		{"bad", "global:\n  scrape_interval: soon\n", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := maxScrapeInterval(tt.conf)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("got %s, %v; want %s (error %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
}
