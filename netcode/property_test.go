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

// TestOrderIndependenceTransactions is TestOrderIndependence with the
// writes of each transaction stored together, in one InsertBatch sharing
// one lock slice, as Commit stores them: the store then registers the
// locks once per transaction and the other writes follow the first one's
// state. Transactions arrive in random orders; states are compared with
// the reference after every batch, with the store's invariants.
func TestOrderIndependenceTransactions(t *testing.T) {
	workloads := *flagWorkloads
	if testing.Short() {
		workloads = 20
	}
	batches := 0
	for wi := 0; wi < workloads; wi++ {
		seed := uint64(wi + 1)
		if *flagSeed != 0 && seed != *flagSeed {
			continue
		}
		w := genWorkload(seed, 20+int(seed%5)*10)
		// Group the values by transaction: consecutive values with the
		// same time and the same lock slice.
		var txs [][]int
		for i := range w.values {
			if n := len(txs); n > 0 {
				prev := &w.values[txs[n-1][0]]
				if v := &w.values[i]; v.Time == prev.Time && len(v.Locks) == len(prev.Locks) && (len(v.Locks) == 0 || &v.Locks[0] == &prev.Locks[0]) {
					txs[n-1] = append(txs[n-1], i)
					continue
				}
			}
			txs = append(txs, []int{i})
		}
		r := rand.New(rand.NewPCG(seed, 2))
		for o := 0; o < 4; o++ {
			s, err := NewStore(testConfig())
			if err != nil {
				t.Fatal(err)
			}
			var inserted []PathValue
			seen := make(map[refKey]bool)
			for _, ti := range r.Perm(len(txs)) {
				var batch []PathValue
				refused := false
				for _, i := range txs[ti] {
					batch = append(batch, w.values[i])
					refused = refused || w.refused[i]
				}
				_, err := s.InsertBatch(testNow, batch)
				if refused {
					if !errors.Is(err, ErrBadLock) {
						t.Fatalf("seed %d order %d: malformed transaction: want ErrBadLock, got %v", seed, o, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("seed %d order %d: %v", seed, o, err)
				}
				for _, v := range batch {
					if !seen[keyOf(&v)] {
						seen[keyOf(&v)] = true
						inserted = append(inserted, v)
					}
				}
				if err := s.Verify(); err != nil {
					t.Fatalf("seed %d order %d (rerun with -netcode.seed=%d): %v", seed, o, seed, err)
				}
				got, err := storeStates(s, inserted)
				if err != nil {
					t.Fatal(err)
				}
				if d := diffStates(referenceStates(inserted), got); d != "" {
					t.Fatalf("seed %d order %d (rerun with -netcode.seed=%d): after %d values, states differ:\n%s", seed, o, seed, len(inserted), d)
				}
				batches++
			}
		}
	}
	t.Logf("netcode: %d transaction batches checked against the reference", batches)
}
