package main

import (
	"fmt"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// chart is one plot: a quantity against the player count, with the
// target as a dashed line.
type chart struct {
	file, title, y string
	value          func(Report) float64
	target         float64 // 0: none
	targetName     string
}

var charts = []chart{
	{"cpu_per_player.png", "Authority CPU per player (one core)", "% of a core per player",
		func(r Report) float64 { return r.AuthorityCPUPctPerPlay }, 0.1, "target 0.1 %"},
	{"bytes_per_player.png", "Down-traffic per player", "kbit/s per player",
		func(r Report) float64 { return r.DownKbpsPerPlayer }, 64, "target 64 kbit/s"},
	{"confirm_latency.png", "Confirm latency − RTT, p99", "ms",
		func(r Report) float64 { return r.ConfirmMinusRTTMsP99 }, 100, "target 100 ms"},
	{"hits_confirmed.png", "Hits confirmed as seen", "%",
		func(r Report) float64 { return r.HitsConfirmedPct }, 98, "target 98 %"},
	// The load the players actually delivered: below the rate, the load
	// generator could not keep up and the other figures are not the
	// authority's at that load.
	{"calls_per_player.png", "Calls made per player per second (delivered load)", "calls/s per player",
		func(r Report) float64 { return r.CallsPerPlayerS }, 0, ""},
	{"cpu_per_call.png", "Authority CPU per call", "µs of CPU per call",
		func(r Report) float64 { return r.AuthorityCPUUsPerCall }, 0, ""},
}

// plotRuns writes one PNG per chart into dir.
func plotRuns(dir string, runs []Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, c := range charts {
		p := plot.New()
		p.Title.Text = c.title
		p.X.Label.Text = "players"
		p.Y.Label.Text = c.y
		pts := make(plotter.XYs, len(runs))
		maxX := 0.0
		for i, r := range runs {
			pts[i].X, pts[i].Y = float64(r.Players), c.value(r)
			maxX = max(maxX, float64(r.Players))
		}
		if err := plotutil.AddLinePoints(p, "measured", pts); err != nil {
			return err
		}
		if c.target > 0 {
			line, err := plotter.NewLine(plotter.XYs{{X: 0, Y: c.target}, {X: maxX, Y: c.target}})
			if err != nil {
				return err
			}
			line.Dashes = []vg.Length{vg.Points(4), vg.Points(4)}
			p.Add(line)
			p.Legend.Add(c.targetName, line)
		}
		p.Y.Min = 0
		p.Legend.Top = true
		if err := p.Save(6*vg.Inch, 4*vg.Inch, filepath.Join(dir, c.file)); err != nil {
			return fmt.Errorf("%s: %w", c.file, err)
		}
	}
	return nil
}
