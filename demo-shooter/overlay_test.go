package main

import (
	"image"
	"strings"
	"testing"
)

func TestPlaceTags(t *testing.T) {
	r := image.Rect(0, 0, 640, 360)
	tags := []tagText{
		{text: "setKeys moved you 9.2 px", x: 100, y: 100},
		{text: "cause: bot4's motion\n  written 0.54 s ago", x: 110, y: 105},
		{text: "hit, rewound 350ms", x: 105, y: 98},
		{text: "off the right edge", x: 630, y: 355},
	}
	got := placeTags(tags, r)
	var boxes []image.Rectangle
	for i, tg := range got {
		lines := strings.Split(tg.text, "\n")
		b := image.Rect(int(tg.x), int(tg.y), int(tg.x)+widest(lines)*glyphW+6, int(tg.y)+len(lines)*lineH+2)
		if !b.In(r) {
			t.Errorf("tag %d at %v leaves the arena %v", i, b, r)
		}
		for j, o := range boxes {
			if b.Overlaps(o) {
				t.Errorf("tag %d at %v overlaps tag %d at %v", i, b, j, o)
			}
		}
		boxes = append(boxes, b)
	}
}

func TestOverlaysSet(t *testing.T) {
	var o overlays
	if err := o.set("ghost, hitboxes"); err != nil || o != (overlays{ghost: true, hitboxes: true}) {
		t.Errorf("set(ghost, hitboxes) = %+v, %v", o, err)
	}
	o = overlays{}
	if err := o.set("all"); err != nil || o != (overlays{true, true, true}) {
		t.Errorf("set(all) = %+v, %v", o, err)
	}
	if err := o.set("ghost,xray"); err == nil || !strings.Contains(err.Error(), "xray") {
		t.Errorf("set(xray): %v", err)
	}
}
