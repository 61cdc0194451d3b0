// Package agones is a small client of the Agones SDK server's REST
// endpoints: the sidecar Agones runs beside each game server, listening on
// localhost at the port in AGONES_SDK_HTTP_PORT. An authority that serves
// one match uses three of them:
//
//   - Ready once it serves, so Agones may allocate it to a match;
//   - Health every few seconds while its node goroutine answers, so a
//     stuck authority is marked Unhealthy and replaced;
//   - Shutdown when the match is over, so Agones deletes the game server
//     and its Fleet starts a fresh one.
//
// The sidecar may start after the game server, so every call is retried
// (with a growing pause, at most MaxBackoff) until it succeeds or its
// context ends. Only the standard library is used: Agones' own Go SDK
// speaks gRPC and brings a large dependency tree for three calls.
package agones

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// EnvPort is the environment variable Agones sets to the SDK server's
// HTTP port.
const EnvPort = "AGONES_SDK_HTTP_PORT"

// HealthEvery is how often a server built on authority/cli pings Health:
// a Fleet's health period (periodSeconds, 5 by default) must be longer.
const HealthEvery = 2 * time.Second

// Retry pauses.
const (
	FirstBackoff = 100 * time.Millisecond
	MaxBackoff   = 2 * time.Second
)

// ErrRefused wraps a 4xx answer: the request itself is wrong, and retrying
// it will not help.
var ErrRefused = errors.New("agones: request refused")

// Client calls one SDK server.
type Client struct {
	base string
	hc   *http.Client
}

// New returns a client of the SDK server at base ("http://localhost:9358").
func New(base string) *Client {
	return &Client{base: strings.TrimSuffix(base, "/"), hc: &http.Client{Timeout: 5 * time.Second}}
}

// FromEnv returns a client of the SDK server named by AGONES_SDK_HTTP_PORT,
// or false when the variable is unset or empty (not running under Agones).
func FromEnv() (*Client, bool) {
	port := os.Getenv(EnvPort)
	if port == "" {
		return nil, false
	}
	return New("http://localhost:" + port), true
}

// Ready tells Agones the game server is ready to take players.
func (c *Client) Ready(ctx context.Context) error { return c.post(ctx, "/ready") }

// Health tells Agones the game server is alive; without one within the
// Fleet's health period (failureThreshold times) it is marked Unhealthy.
func (c *Client) Health(ctx context.Context) error { return c.post(ctx, "/health") }

// Shutdown tells Agones to shut the game server down: its pod is deleted.
func (c *Client) Shutdown(ctx context.Context) error { return c.post(ctx, "/shutdown") }

// post sends an empty JSON body to path until the SDK server answers 2xx,
// answers 4xx (ErrRefused), or ctx ends.
func (c *Client) post(ctx context.Context, path string) error {
	pause := FirstBackoff
	for {
		err := c.postOnce(ctx, path)
		if err == nil || errors.Is(err, ErrRefused) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("agones: %s: %w (last: %w)", path, ctx.Err(), err)
		case <-time.After(pause):
		}
		pause = min(2*pause, MaxBackoff)
	}
}

func (c *Client) postOnce(ctx context.Context, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, strings.NewReader("{}"))
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrRefused, path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		return fmt.Errorf("%w: %s: %s: %s", ErrRefused, path, resp.Status, strings.TrimSpace(string(body)))
	}
	return fmt.Errorf("agones: %s: %s: %s", path, resp.Status, strings.TrimSpace(string(body)))
}

// KeepHealthy sends Health every period while healthy reports true, until
// ctx ends; a failed ping is retried at the next period (the health
// checks' threshold allows for some). healthy is asked each time, so a
// game server whose loop is stuck stops pinging and is replaced.
func (c *Client) KeepHealthy(ctx context.Context, period time.Duration, healthy func(context.Context) bool) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		if healthy(ctx) {
			pctx, cancel := context.WithTimeout(ctx, period)
			c.Health(pctx)
			cancel()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
