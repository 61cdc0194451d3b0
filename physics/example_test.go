package physics_test

import (
	"fmt"
	"time"

	"github.com/rewindnet/rewind/physics"
)

// A target strafes across the shooter's view. The client fired at what it
// saw 100 ms ago; the authority, checking the shot at the view time, agrees
// it hit, whereas checking it at the present would call it a miss.
func Example_lagCompensatedHitscan() {
	w, err := physics.New(physics.DefaultConfig())
	if err != nil {
		panic(err)
	}
	ms := int64(time.Millisecond)
	// A wall behind the target, at rest for ever.
	_ = w.Set(physics.Body{Path: "walls/1", Shape: physics.Segment(physics.V(0, -500), physics.V(0, 500)),
		Motion: []physics.Keyframe{{Pos: physics.V(600, 0)}}})
	// The target moves up at 300 units/s; the authority writes one
	// keyframe per 50 ms tick.
	for tick := int64(0); tick <= 10; tick++ {
		t := tick * 50 * ms
		pos := physics.V(400, -150+300*float64(t)/1e9)
		_ = w.Upsert("players/7", physics.Circle(16), physics.Keyframe{T: t, Pos: pos, Vel: physics.V(0, 300)})
		_ = w.Advance(t)
	}
	now := 500 * ms
	shot := physics.Ray{Origin: physics.V(0, -30), Dir: physics.V(1, 0), MaxDist: 1500}
	skip := physics.Filter{Exclude: "players/42"}

	past, _, _ := w.Raycast(shot, now-100*ms, skip)
	fmt.Printf("at view time: %s at %.1f\n", past.Path, past.Dist)
	present, _, _ := w.Raycast(shot, now, skip)
	fmt.Printf("at present:   %s at %.1f\n", present.Path, present.Dist)
	// Output:
	// at view time: players/7 at 384.0
	// at present:   walls/1 at 600.0
}
