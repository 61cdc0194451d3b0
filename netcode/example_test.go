package netcode_test

import (
	"fmt"
	"time"

	"github.com/rewindnet/rewind/netcode"
)

// Two writers, a late write, a cascade of invalidations, then the late write
// rejected and everything it broke restored: validity is a function of the
// set of values, whatever order they arrive in.
func Example() {
	reg := netcode.NewRegistry()
	// set writes args to the path "door" if the power is on.
	reg.Register("door", func(tx *netcode.Tx, args []byte) error {
		if power, _ := tx.Read("power"); string(power) != "on" {
			return fmt.Errorf("no power")
		}
		tx.Write("door", args)
		return nil
	}, netcode.FuncOptions{})
	// walk goes inside when the door is open.
	reg.Register("walk", func(tx *netcode.Tx, _ []byte) error {
		if door, _ := tx.Read("door"); string(door) == "open" {
			tx.Write("pos", []byte("inside"))
		}
		return nil
	}, netcode.FuncOptions{})
	// score counts a point for being inside.
	reg.Register("score", func(tx *netcode.Tx, _ []byte) error {
		if pos, _ := tx.Read("pos"); string(pos) == "inside" {
			tx.Write("score", []byte("1"))
		}
		return nil
	}, netcode.FuncOptions{})

	store, _ := netcode.NewStore(netcode.DefaultConfig())
	cfg := store.Config()
	ms := int64(time.Millisecond)
	now := 2000 * ms
	run := func(creator uint32, name, args string, at int64) {
		out := reg.Run(store, &cfg, netcode.Call{ID: netcode.CallID{Creator: creator, Seq: uint64(at)}, Name: name, Args: []byte(args), Time: at * ms}, 0)
		changes, err := store.Commit(now, &out)
		fmt.Printf("%s@%d by %d:", name, at, creator)
		if err != nil {
			fmt.Printf(" refused: %v\n", err)
			return
		}
		for _, c := range changes {
			fmt.Printf(" [%s]", c)
		}
		fmt.Println()
	}
	store.Insert(now, netcode.PathValue{Path: "power", Time: netcode.Time{Nanos: 1000 * ms, Creator: 9}, Value: []byte("on")})
	run(1, "door", "open", 1100)
	run(2, "walk", "", 1300)
	run(2, "score", "", 1400)
	// Writer 1 closed the door at 1200, but the message arrives late.
	run(1, "door", "closed", 1200)
	// The power had failed at 1150: the late close read "on" and is rejected.
	changes, _ := store.Insert(now, netcode.PathValue{Path: "power", Time: netcode.Time{Nanos: 1150 * ms, Creator: 9}, Value: []byte("off")})
	fmt.Print("power off@1150:")
	for _, c := range changes {
		fmt.Printf(" [%s]", c)
	}
	fmt.Println()
	v, _ := store.Latest("score", netcode.Time{Nanos: now})
	fmt.Printf("score %s\n", v.Value)
	// Output:
	// door@1100 by 1: [added door@1100000000.v0.c1 valid]
	// walk@1300 by 2: [added pos@1300000000.v0.c2 valid]
	// score@1400 by 2: [added score@1400000000.v0.c2 valid]
	// door@1200 by 1: [added door@1200000000.v0.c1 valid] [state pos@1300000000.v0.c2 valid→invalid] [state score@1400000000.v0.c2 valid→invalid]
	// power off@1150: [added power@1150000000.v0.c9 valid] [state door@1200000000.v0.c1 valid→invalid] [state pos@1300000000.v0.c2 invalid→valid] [state score@1400000000.v0.c2 invalid→valid]
	// score 1
}
