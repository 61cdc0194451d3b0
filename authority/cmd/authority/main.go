// Command authority runs a Rewind authority: the server that keeps the
// authoritative store, runs game functions and streams values to watching
// clients over KCP.
//
//	authority -listen 127.0.0.1:7777 -functions counter -log-level debug
//
// It serves a registry chosen by name (-functions): none, a plain
// path-value store (raw writes under the write rule, and watches), or
// counter, the counter game of package examples/counter (one function,
// "add"; its doc comment is the contract a client links against), for
// smoke tests. A game serves its own functions with a command of its own
// built on package authority/cli, which gives it every flag of this one
// (examples/counter/cmd/counter-server is the template). -h lists the
// flags. SIGINT or SIGTERM shuts it down gracefully (every client is told
// why, after what was queued for it) and it exits 0; a bad flag exits 2
// and a busy port 1, with the reason on stderr.
package main

import (
	"github.com/rewindnet/rewind/authority/cli"
	"github.com/rewindnet/rewind/examples/counter"
	"github.com/rewindnet/rewind/netcode"
)

// program is the authority command: the generic registries by name.
var program = cli.Program{
	Name: "authority",
	Registries: map[string]func() *netcode.Registry{
		// none serves no functions: a plain path-value store.
		"none": func() *netcode.Registry { return nil },
		// counter serves examples/counter's "add", for smoke tests.
		"counter": counter.Registry,
	},
	Default: "none",
}

func main() { cli.Main(program) }
