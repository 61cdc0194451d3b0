package main

import (
	"slices"
	"strings"
	"testing"
)

func TestFit(t *testing.T) {
	tests := []struct {
		name     string
		s        string
		cols     int
		maxLines int
		want     []string
	}{
		{"fits", "last refusal: aim: game: player is dead", 60, 2, []string{"last refusal: aim: game: player is dead"}},
		{"wraps at words", "last refusal: aim: game: player is dead", 20, 3,
			[]string{"last refusal: aim:", "  game: player is", "  dead"}},
		{"cut with an ellipsis", "last refusal: aim: game: player is dead", 20, 2,
			[]string{"last refusal: aim:", "  game: player is..."}},
		{"cut inside a line", "abcdefghij klmnopqrst", 10, 1, []string{"abcdefg..."}},
		{"long word split", "players/12345/motion", 8, 3, []string{"players/", "  12345/", "  motion"}},
		{"newline starts a line", "one\ntwo three", 20, 3, []string{"one", "two three"}},
		{"newlines beyond the lines", "one\ntwo\nthree", 20, 2, []string{"one", "two..."}},
		{"no room", "anything", 4, 2, nil},
		{"multibyte counts once", "ping ± 40ms µs", 14, 1, []string{"ping ± 40ms µs"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fit(tt.s, tt.cols, tt.maxLines, "  ")
			if !slices.Equal(got, tt.want) {
				t.Errorf("fit(%q, %d, %d) = %q, want %q", tt.s, tt.cols, tt.maxLines, got, tt.want)
			}
			for _, l := range got {
				if n := len([]rune(l)); n > tt.cols {
					t.Errorf("line %q is %d wide, more than %d", l, n, tt.cols)
				}
			}
			if len(got) > tt.maxLines {
				t.Errorf("%d lines, more than %d", len(got), tt.maxLines)
			}
		})
	}
	// Any text fits its box.
	long := strings.Repeat("a correction of players/7/motion because of players/9/motion ", 20)
	for cols := 8; cols < 80; cols += 7 {
		for lines := 1; lines < 6; lines++ {
			got := fit(long, cols, lines, "  ")
			if len(got) > lines || widest(got) > cols {
				t.Fatalf("fit(long, %d, %d): %d lines, widest %d", cols, lines, len(got), widest(got))
			}
		}
	}
}
