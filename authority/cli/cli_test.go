package cli

import (
	"bytes"
	"context"
	"flag"
	"net"
	"testing"
	"time"

	"github.com/rewindnet/rewind/authority"
)

// TestProgramHooks: a command's own flag is parsed beside the
// authority's and read by Configure; Started gets the server that
// listens at the address ready was given, before it serves; Run returns
// when ctx ends.
func TestProgramHooks(t *testing.T) {
	var mine *string
	var started *authority.Server
	var readyAddr net.Addr
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // a bound against a hang
	defer cancel()
	p := Program{
		Name:  "game",
		Flags: func(fs *flag.FlagSet) { mine = fs.String("mine", "", "a flag of the game's") },
		Configure: func(cfg *authority.ServerConfig) error {
			if *mine != "x" {
				t.Errorf("Configure sees -mine %q, want x", *mine)
			}
			return nil
		},
		Started: func(s *authority.Server) {
			started = s
			cancel() // serve no longer than it takes to start
		},
	}
	var stderr bytes.Buffer
	err := p.Run(ctx, []string{"-listen", "127.0.0.1:0", "-mine", "x"}, &stderr, func(a net.Addr) { readyAddr = a })
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, stderr.String())
	}
	if started == nil || readyAddr == nil || started.Addr().String() != readyAddr.String() {
		t.Fatalf("Started got %v, ready %v: want the server listening at ready's address", started, readyAddr)
	}
	// Unknown flags are refused as before.
	err = p.Run(context.Background(), []string{"-listen", "127.0.0.1:0", "-theirs", "y"}, &stderr, nil)
	if err == nil {
		t.Fatal("an undefined flag was accepted")
	}
}
