package netcode_test

import (
	"context"
	"fmt"
	"time"

	"github.com/rewindnet/rewind/authority"
	"github.com/rewindnet/rewind/netcode"
)

// The smallest game that links netcode: a dot that moves. The same
// registry runs in the client, which predicts each move at once, and in
// the authority, which decides. Everything but the authority's three
// lines is the game.
func Example_movingDot() {
	reg := netcode.NewRegistry()
	reg.Register("move", func(tx *netcode.Tx, args []byte) error {
		v, _ := tx.Read("dot")
		p, _ := netcode.Floats(v)
		p = append(p, 0, 0) // (0, 0) before the first move
		d, _ := netcode.Floats(args)
		tx.Write("dot", netcode.AppendFloats(nil, p[0]+d[0], p[1]+d[1]))
		return nil
	}, netcode.FuncOptions{})

	// An authority on loopback; a real game runs its own server command
	// over package authority/cli, linking this same registry.
	srv, _ := authority.NewServer(authority.DefaultServerConfig("127.0.0.1:0", reg))
	go srv.Serve(context.Background())
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := netcode.Dial(ctx, srv.Addr().String(), netcode.Options{Registry: reg})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	c.Watch("dot")
	for range 3 {
		c.Call("move", netcode.AppendFloats(nil, 1, 0.5)) // a key press: the dot moves now
	}
	frame := time.NewTicker(16 * time.Millisecond)
	for c.Predicted("dot") && ctx.Err() == nil { // until the authority confirmed every move
		<-frame.C
		c.Update() // its events (results, values, corrections) matter to a real game
	}
	v, _ := c.Read("dot")
	p, _ := netcode.Floats(v)
	fmt.Println("dot at", p, "confirmed:", !c.Predicted("dot"))
	// Output: dot at [3 1.5] confirmed: true
}
