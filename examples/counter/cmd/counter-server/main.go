// Command counter-server serves the counter game (package
// examples/counter) with every flag of the authority binary: the template
// of a game's own server. A game copies it, links its own registry in
// place of counter.Registry, and has a server that its clients, linking
// the same registry, can play on:
//
//	go run ./examples/counter/cmd/counter-server -listen 127.0.0.1:7777
//
// -h lists the flags (listen address, secret, transport preset, timing,
// limits, log level). SIGINT or SIGTERM shuts it down gracefully.
package main

import (
	"github.com/rewindnet/rewind/authority/cli"
	"github.com/rewindnet/rewind/examples/counter"
)

func main() {
	cli.Main(cli.Program{Name: "counter-server", Functions: counter.Registry})
}
