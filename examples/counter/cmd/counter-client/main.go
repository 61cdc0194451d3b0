// Command counter-client adds 1 to the counter "clicks" three times on an
// authority serving the counter game, and prints the count.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/rewindnet/rewind/examples/counter"
	"github.com/rewindnet/rewind/netcode"
)

func main() {
	addr := "127.0.0.1:7777" // an authority serving counter.Registry()
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := netcode.Dial(ctx, addr, netcode.Options{Registry: counter.Registry()})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	c.Watch(counter.Prefix) // every counter, and every change to one

	const path = counter.Prefix + "clicks"
	frame := time.NewTicker(16 * time.Millisecond) // the game's frame loop
	defer frame.Stop()
	for calls := 0; calls < 3 || c.Predicted(path); <-frame.C {
		if ctx.Err() != nil {
			log.Fatal("no answer from the authority")
		}
		for _, ev := range c.Update() {
			switch ev.Kind {
			case netcode.EventResult:
				if ev.Err != nil {
					log.Fatal(ev.Err)
				}
			case netcode.EventCorrection:
				fmt.Println("corrected:", ev.Correction)
			}
		}
		// Predict only from a complete view: once the watch's snapshot
		// is in, a call reads what the authority will read.
		if c.WatchReady(counter.Prefix) && calls < 3 {
			if _, err := c.Call(counter.Add, counter.AddArgs("clicks", 1)); err != nil {
				log.Fatal(err)
			}
			calls++ // the new count is readable at once, before the authority answers
		}
	}
	v, _ := c.Read(path)
	n, _ := counter.Count(v)
	fmt.Println("clicks:", n)
}
