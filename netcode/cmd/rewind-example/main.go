// Command rewind-example plays a small scenario on the netcode core and
// narrates it: two players write through game functions, one message arrives
// late and invalidates what depended on it, the authority re-runs the
// affected call at the next version, and finality turns the surviving values
// into compact history.
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/rewindnet/rewind/netcode"
)

func main() {
	quiet := flag.Bool("q", false, "print only the final state")
	flag.Parse()
	out := io.Writer(os.Stdout)
	if *quiet {
		out = io.Discard
	}
	if err := run(out, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "rewind-example:", err)
		os.Exit(1)
	}
}

const ms = int64(time.Millisecond)

// registry: "pickup" gives the caller the coin if it is still there;
// "score" counts what the caller holds.
func registry() *netcode.Registry {
	r := netcode.NewRegistry()
	r.Register("pickup", func(tx *netcode.Tx, _ []byte) error {
		owner, ok := tx.Read("coin/owner")
		if ok && len(owner) > 0 {
			return fmt.Errorf("coin already taken by player %d", owner[0])
		}
		tx.Write("coin/owner", []byte{byte(tx.Caller())})
		return nil
	}, netcode.FuncOptions{})
	r.Register("score", func(tx *netcode.Tx, _ []byte) error {
		owner, _ := tx.Read("coin/owner")
		points := uint64(0)
		if len(owner) > 0 && uint32(owner[0]) == tx.Caller() {
			points = 10
		}
		tx.Write(fmt.Sprintf("players/%d/score", tx.Caller()), binary.LittleEndian.AppendUint64(nil, points))
		return nil
	}, netcode.FuncOptions{})
	return r
}

func run(w, result io.Writer) error {
	reg := registry()
	store, err := netcode.NewStore(netcode.DefaultConfig())
	if err != nil {
		return err
	}
	cfg := store.Config()
	now := 10_000 * ms
	outcomes := map[netcode.Time]netcode.Outcome{}

	call := func(player uint32, name string, at int64) {
		c := netcode.Call{ID: netcode.CallID{Creator: player, Seq: uint64(at)}, Name: name, Time: at * ms}
		out := reg.Run(store, &cfg, c, 0)
		fmt.Fprintf(w, "t=%dms player %d calls %s\n", at, player, name)
		commit(w, store, now, &out, outcomes)
	}

	fmt.Fprintln(w, "— two players race for one coin —")
	call(2, "pickup", 9_300)
	call(2, "score", 9_400)
	fmt.Fprintln(w, "— player 1 picked it up first, at 9200 ms, but its message arrives late —")
	call(1, "pickup", 9_200)

	// The authority re-runs every call whose output turned invalid, at the
	// same write time and the next version, on the corrected state.
	for rounds := 0; rounds < 4; rounds++ {
		var rerun []netcode.Outcome
		for t, o := range outcomes {
			if v, ok := store.Get(o.Writes[0].Path, t); ok && v.State == netcode.Invalid {
				rerun = append(rerun, o)
				delete(outcomes, t)
			}
		}
		if len(rerun) == 0 {
			break
		}
		// In time order: a re-run reads the corrected results of earlier ones.
		slices.SortFunc(rerun, func(a, b netcode.Outcome) int { return a.Time.Compare(b.Time) })
		for _, o := range rerun {
			fmt.Fprintf(w, "re-run %s of player %d at version %d\n", o.Call.Name, o.Call.ID.Creator, o.Time.Version+1)
			out := reg.Run(store, &cfg, o.Call, o.Time.Version+1)
			commit(w, store, now, &out, outcomes)
		}
	}

	fmt.Fprintln(w, "— time passes: everything becomes final —")
	now += 2_000 * ms
	store.Tick(now)
	st := store.Stats()
	fmt.Fprintf(w, "final values kept: %d, dropped (invalid): %d, live: %d\n", st.FinalValues, st.Dropped, st.LiveValues)

	owner, _ := store.Latest("coin/owner", netcode.Time{Nanos: now})
	fmt.Fprintf(result, "coin owner: player %d\n", owner.Value[0])
	for _, p := range []uint32{1, 2} {
		if v, ok := store.Latest(fmt.Sprintf("players/%d/score", p), netcode.Time{Nanos: now}); ok {
			fmt.Fprintf(result, "player %d score: %d\n", p, binary.LittleEndian.Uint64(v.Value))
		}
	}
	return nil
}

func commit(w io.Writer, s *netcode.Store, now int64, out *netcode.Outcome, outcomes map[netcode.Time]netcode.Outcome) {
	if out.Err != nil {
		fmt.Fprintf(w, "  refused by the game: %v\n", out.Err)
		return
	}
	changes, err := s.Commit(now, out)
	if err != nil {
		fmt.Fprintf(w, "  refused by the store: %v\n", err)
		return
	}
	outcomes[out.Time] = *out
	for _, c := range changes {
		fmt.Fprintf(w, "  %v\n", c)
	}
}
