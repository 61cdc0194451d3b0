package main

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rewindnet/rewind/netcode/lagsim"
)

func preset(t *testing.T, name string) lagsim.Profile {
	t.Helper()
	p, err := lagsim.Preset(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseFlags(t *testing.T) {
	mobile, none, awful, broadband := preset(t, "mobile"), preset(t, "none"), preset(t, "awful"), preset(t, "broadband")
	base := func(mod func(c *config)) *config {
		c := &config{mode: modeWindow, bots: 4, lag: mobile, splitLag: none, duration: time.Minute,
			frames: 120, seed: 1, profiles: []lagsim.Profile{mobile}, authorityProcs: 1, shutdownWait: 600 * time.Millisecond, speed: 1}
		if mod != nil {
			mod(c)
		}
		return c
	}
	tests := []struct {
		name string
		args []string
		want *config
	}{
		{"default", nil, base(nil)},
		{"record", []string{"-data", "m1"}, base(func(c *config) { c.data = "m1" })},
		{"record headless", []string{"-headless", "-data", "m1"}, base(func(c *config) { c.mode, c.data = modeHeadless, "m1" })},
		{"replay", []string{"-replay", "m1", "-speed", "4", "-player", "bot3", "-from", "10s"},
			base(func(c *config) {
				c.mode, c.replay, c.speed, c.viewer, c.from = modeReplay, []string{"m1"}, 4, "bot3", 10*time.Second
			})},
		{"replay over disks", []string{"-replay", "d1,d2,d3", "-parity", "1"},
			base(func(c *config) { c.mode, c.replay, c.parity = modeReplay, []string{"d1", "d2", "d3"}, 1 })},
		{"replay with hitboxes", []string{"-replay", "m1", "-overlays", "hitboxes"},
			base(func(c *config) { c.mode, c.replay, c.overlays = modeReplay, []string{"m1"}, overlays{hitboxes: true} })},
		{"replay summary", []string{"-replay", "m1", "-headless"}, base(func(c *config) { c.mode, c.replay = modeSummary, []string{"m1"} })},
		{"replay screenshot", []string{"-replay", "m1", "-screenshot", "r.png", "-frames", "1"},
			base(func(c *config) { c.mode, c.replay, c.screenshot, c.frames = modeReplay, []string{"m1"}, "r.png", 1 })},
		{"connect with bots", []string{"-connect", "h:1", "-bots", "0"}, base(func(c *config) { c.connect, c.bots = "h:1", 0 })},
		{"lag preset", []string{"-lag", "awful"}, base(func(c *config) { c.lag, c.profiles = awful, []lagsim.Profile{awful} })},
		{"custom lag", []string{"-delay", "50ms", "-jitter", "10ms", "-loss", "0.01"}, base(func(c *config) {
			c.lag = lagsim.Profile{Name: "custom", Delay: 50 * time.Millisecond, Jitter: 10 * time.Millisecond, Loss: 0.01}
			c.profiles = []lagsim.Profile{c.lag}
		})},
		{"split", []string{"-split", "-split-lag", "awful"}, base(func(c *config) { c.split, c.splitLag = true, awful })},
		{"headless", []string{"-headless", "-bots", "16", "-duration", "60s", "-report", "q.json", "-profiles", "broadband, mobile,awful"},
			base(func(c *config) {
				c.mode, c.bots, c.report = modeHeadless, 16, "q.json"
				c.profiles = []lagsim.Profile{broadband, mobile, awful}
			})},
		{"cluster kill", []string{"-headless", "-cluster", "3", "-kill-node-after", "15s", "-duration", "40s"},
			base(func(c *config) {
				c.mode, c.cluster, c.killAfter, c.duration = modeHeadless, 3, 15*time.Second, 40*time.Second
			})},
		{"cluster without a kill", []string{"-headless", "-cluster", "2"}, base(func(c *config) { c.mode, c.cluster = modeHeadless, 2 })},
		{"headless, authority on every core", []string{"-headless", "-authority-procs", "0"},
			base(func(c *config) { c.mode, c.authorityProcs = modeHeadless, 0 })},
		{"screenshot", []string{"-screenshot", "s.png", "-frames", "30", "-seed", "7"}, base(func(c *config) { c.screenshot, c.frames, c.seed = "s.png", 30, 7 })},
		{"shutdown wait", []string{"-shutdown-wait", "5s"}, base(func(c *config) { c.shutdownWait = 5 * time.Second })},
		{"overlays", []string{"-overlays", "ghost, corrections"}, base(func(c *config) { c.overlays = overlays{ghost: true, corrections: true} })},
		{"all overlays", []string{"-overlays", "all"}, base(func(c *config) { c.overlays = overlays{true, true, true} })},
		{"screenshot when", []string{"-screenshot", "s.png", "-screenshot-when", "hit"}, base(func(c *config) { c.screenshot, c.shotWhen = "s.png", "hit" })},
		{"autopilot without lag compensation", []string{"-autopilot", "-lag-compensation=false"}, base(func(c *config) { c.autopilot, c.noLagComp = true, true })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseFlags(tt.args, io.Discard, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(config{}, overlays{})); diff != "" {
				t.Errorf("parseFlags(%q) (-want +got):\n%s", tt.args, diff)
			}
		})
	}
}

func TestParseFlagsRefuses(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"unknown flag", []string{"-nope"}},
		{"extra argument", []string{"extra"}},
		{"replay and connect", []string{"-replay", "m1", "-connect", "h:1"}},
		{"replay and bots", []string{"-replay", "m1", "-bots", "3"}},
		{"replay and data", []string{"-replay", "m1", "-data", "m2"}},
		{"replay and the ghost", []string{"-replay", "m1", "-overlays", "ghost"}},
		{"replay summary and screenshot", []string{"-replay", "m1", "-headless", "-screenshot", "r.png"}},
		{"speed without replay", []string{"-speed", "2"}},
		{"player without replay", []string{"-player", "3"}},
		{"speed too high", []string{"-replay", "m1", "-speed", "1000"}},
		{"negative from", []string{"-replay", "m1", "-from", "-1s"}},
		{"parity without directories", []string{"-replay", "m1", "-parity", "1"}},
		{"data and connect", []string{"-data", "m1", "-connect", "h:1"}},
		{"data over profiles", []string{"-headless", "-data", "m1", "-profiles", "mobile,awful"}},
		{"headless and screenshot", []string{"-headless", "-screenshot", "x.png"}},
		{"headless and split", []string{"-headless", "-split"}},
		{"too many bots", []string{"-bots", "65"}},
		{"negative bots", []string{"-bots", "-1"}},
		{"headless without bots", []string{"-headless", "-bots", "0"}},
		{"zero duration", []string{"-headless", "-duration", "0s"}},
		{"zero frames", []string{"-frames", "0"}},
		{"unknown preset", []string{"-lag", "moon"}},
		{"unknown split preset", []string{"-split", "-split-lag", "moon"}},
		{"split-lag without split", []string{"-split-lag", "awful"}},
		{"lag and delay", []string{"-lag", "wifi", "-delay", "10ms"}},
		{"negative delay", []string{"-delay", "-10ms"}},
		{"loss above one", []string{"-loss", "2"}},
		{"report without headless", []string{"-report", "x.json"}},
		{"profiles without headless", []string{"-profiles", "lan"}},
		{"unknown profile", []string{"-headless", "-profiles", "lan,moon"}},
		{"profile twice", []string{"-headless", "-profiles", "lan,lan"}},
		{"cluster without headless", []string{"-cluster", "3"}},
		{"cluster of one", []string{"-headless", "-cluster", "1"}},
		{"cluster too large", []string{"-headless", "-cluster", "10"}},
		{"cluster and data", []string{"-headless", "-cluster", "3", "-data", "m1"}},
		{"kill without cluster", []string{"-headless", "-kill-node-after", "5s"}},
		{"kill after the match", []string{"-headless", "-cluster", "3", "-kill-node-after", "40s", "-duration", "40s"}},
		{"negative kill time", []string{"-headless", "-cluster", "3", "-kill-node-after", "-1s"}},
		{"stall without kill", []string{"-headless", "-cluster", "3", "-stall-node-for", "2s"}},
		{"stall past the match", []string{"-headless", "-cluster", "3", "-kill-node-after", "30s", "-stall-node-for", "10s", "-duration", "40s"}},
		{"zero stall", []string{"-headless", "-cluster", "3", "-kill-node-after", "5s", "-stall-node-for", "0s"}},
		{"shards without cluster", []string{"-headless", "-shards", "region"}},
		{"unknown shards", []string{"-headless", "-cluster", "3", "-shards", "hash"}},
		{"move without shards", []string{"-headless", "-cluster", "3", "-move-range-after", "5s"}},
		{"move after the match", []string{"-headless", "-cluster", "3", "-shards", "region", "-move-range-after", "40s", "-duration", "40s"}},
		{"authority-procs without headless", []string{"-authority-procs", "2"}},
		{"negative authority-procs", []string{"-headless", "-authority-procs", "-1"}},
		{"zero shutdown wait", []string{"-shutdown-wait", "0s"}},
		{"shutdown wait too long", []string{"-shutdown-wait", "2m"}},
		{"shutdown wait with headless", []string{"-headless", "-shutdown-wait", "1s"}},
		{"unknown overlay", []string{"-overlays", "ghost,xray"}},
		{"overlays with headless", []string{"-headless", "-overlays", "all"}},
		{"autopilot with headless", []string{"-headless", "-autopilot"}},
		{"unknown moment", []string{"-screenshot", "s.png", "-screenshot-when", "never"}},
		{"moment without screenshot", []string{"-screenshot-when", "hit"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseFlags(tt.args, io.Discard, io.Discard)
			if !errors.Is(err, errUsage) {
				t.Errorf("parseFlags(%q) = %+v, %v; want errUsage", tt.args, c, err)
			}
		})
	}
}
