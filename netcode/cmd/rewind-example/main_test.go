package main

import (
	"bytes"
	"io"
	"testing"
)

func TestScenario(t *testing.T) {
	var result bytes.Buffer
	if err := run(io.Discard, &result); err != nil {
		t.Fatal(err)
	}
	// Player 1 never called score; player 2's score was re-run after the
	// late pickup and now reads that it does not hold the coin.
	want := "coin owner: player 1\nplayer 2 score: 0\n"
	if got := result.String(); got != want {
		t.Fatalf("result:\n%s\nwant:\n%s", got, want)
	}
}
