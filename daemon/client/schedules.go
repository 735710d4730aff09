package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/chaosd/chaosd/api"
)

// Schedules describes every scheduled experiment: cron, time zone,
// pause, next fire times (with their freeze windows), last run, skips.
func (c *Client) Schedules(ctx context.Context) ([]api.ScheduleInfo, error) {
	var out []api.ScheduleInfo
	err := c.do(ctx, http.MethodGet, "/v1/schedules", nil, &out)
	return out, err
}

// PauseSchedule pauses an experiment's schedule (paused) or resumes it.
func (c *Client) PauseSchedule(ctx context.Context, experiment string, paused bool) (api.ScheduleInfo, error) {
	verb := "resume"
	if paused {
		verb = "pause"
	}
	var out api.ScheduleInfo
	err := c.do(ctx, http.MethodPost, "/v1/schedules/"+url.PathEscape(experiment)+"/"+verb, nil, &out)
	return out, err
}
