package netcode

import (
	"errors"
	"flag"
	"math/rand/v2"
	"testing"
)

var (
	flagWorkloads = flag.Int("netcode.workloads", 120, "random workloads in TestOrderIndependence")
	flagOrders    = flag.Int("netcode.orders", 20, "random arrival orders per workload")
	flagSeed      = flag.Uint64("netcode.seed", 0, "run only this workload seed (0: all)")
)

// TestOrderIndependence is the differential property test of the validity
// engine: seeded random workloads are inserted in many random orders, and
// for every order the store's states must equal the naive reference's. A
// few orders per workload are also checked after every single insertion
// (the valid set is a function of the set seen so far) together with the
// store's internal invariants. Reproduce a failure with -netcode.seed.
func TestOrderIndependence(t *testing.T) {
	workloads, orders := *flagWorkloads, *flagOrders
	if testing.Short() {
		workloads = 20
	}
	total := 0
	for wi := 0; wi < workloads; wi++ {
		seed := uint64(wi + 1)
		if *flagSeed != 0 {
			if seed != *flagSeed {
				continue
			}
		}
		w := genWorkload(seed, 20+int(seed%5)*10)
		acc := w.accepted()
		want := referenceStates(acc)
		r := rand.New(rand.NewPCG(seed, 1))
		for o := 0; o < orders; o++ {
			order := r.Perm(len(w.values))
			stepCheck := o < 2
			if err := runOrder(&w, order, want, stepCheck); err != nil {
				t.Fatalf("seed %d order %d (rerun with -run TestOrderIndependence -netcode.seed=%d): %v", seed, o, seed, err)
			}
			total++
		}
	}
	t.Logf("netcode: %d arrival orders checked against the reference", total)
	if *flagSeed == 0 && !testing.Short() && total < 2000 {
		t.Fatalf("only %d orders checked, want at least 2000", total)
	}
}

func runOrder(w *workload, order []int, want map[refKey]State, stepCheck bool) error {
	s, err := NewStore(testConfig())
	if err != nil {
		return err
	}
	var inserted []PathValue
	seen := make(map[refKey]bool)
	for _, i := range order {
		v := w.values[i]
		_, err := s.Insert(testNow, v)
		if w.refused[i] {
			if !errors.Is(err, ErrBadLock) {
				return errorf("malformed %s@%v: want ErrBadLock, got %v", v.Path, v.Time, err)
			}
			continue
		}
		if err != nil {
			return errorf("insert %s@%v: %v", v.Path, v.Time, err)
		}
		if !seen[keyOf(&v)] {
			seen[keyOf(&v)] = true
			inserted = append(inserted, v)
		}
		if stepCheck {
			if err := s.Verify(); err != nil {
				return errorf("after inserting %s@%v: %v", v.Path, v.Time, err)
			}
			ref := referenceStates(inserted)
			got, err := storeStates(s, inserted)
			if err != nil {
				return err
			}
			if d := diffStates(ref, got); d != "" {
				return errorf("after %d insertions, states differ:\n%s", len(inserted), d)
			}
		}
	}
	got, err := storeStates(s, w.accepted())
	if err != nil {
		return err
	}
	if d := diffStates(want, got); d != "" {
		return errorf("final states differ:\n%s", d)
	}
	return nil
}
