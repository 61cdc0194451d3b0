package transport

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func drainQueue(q *sendQueue) []string {
	var out []string
	for {
		b, ok := q.pop()
		if !ok {
			return out
		}
		out = append(out, string(b))
	}
}

func TestSendQueue(t *testing.T) {
	type push struct {
		frame string
		class Class
	}
	tests := []struct {
		name                string
		maxFrames, maxBytes int
		pushes              []push
		want                []string
		dropped             uint64
	}{
		{
			name: "control first, each class in order", maxFrames: 10, maxBytes: 100,
			pushes: []push{{"d1", Data}, {"c1", Control}, {"d2", Data}, {"c2", Control}},
			want:   []string{"c1", "c2", "d1", "d2"},
		},
		{
			name: "frame limit drops oldest data", maxFrames: 3, maxBytes: 100,
			pushes:  []push{{"d1", Data}, {"d2", Data}, {"c1", Control}, {"d3", Data}, {"d4", Data}},
			want:    []string{"c1", "d3", "d4"},
			dropped: 2,
		},
		{
			name: "byte limit drops oldest data", maxFrames: 10, maxBytes: 6,
			pushes:  []push{{"aa", Data}, {"bb", Data}, {"cc", Data}, {"dd", Data}},
			want:    []string{"bb", "cc", "dd"},
			dropped: 1,
		},
		{
			name: "control survives while data remains", maxFrames: 2, maxBytes: 100,
			pushes:  []push{{"c1", Control}, {"d1", Data}, {"c2", Control}},
			want:    []string{"c1", "c2"},
			dropped: 1,
		},
		{
			name: "new data dropped when only control is ahead", maxFrames: 2, maxBytes: 100,
			pushes:  []push{{"c1", Control}, {"c2", Control}, {"d1", Data}},
			want:    []string{"c1", "c2"},
			dropped: 1,
		},
		{
			name: "oldest control dropped when no data", maxFrames: 2, maxBytes: 100,
			pushes:  []push{{"c1", Control}, {"c2", Control}, {"c3", Control}},
			want:    []string{"c2", "c3"},
			dropped: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := newSendQueue(tt.maxFrames, tt.maxBytes)
			for _, p := range tt.pushes {
				q.push([]byte(p.frame), p.class)
			}
			if diff := cmp.Diff(tt.want, drainQueue(&q)); diff != "" {
				t.Errorf("pop order (-want +got):\n%s", diff)
			}
			if q.dropped != tt.dropped {
				t.Errorf("dropped %d, want %d", q.dropped, tt.dropped)
			}
			if q.len() != 0 || q.bytes != 0 {
				t.Errorf("after draining: %d frames, %d bytes", q.len(), q.bytes)
			}
		})
	}
}

// TestSendQueueAgainstModel drives the queue and a naive model (plain
// slices, linear scans) with the same random operations.
func TestSendQueueAgainstModel(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	for round := range 50 {
		maxFrames, maxBytes := 1+rng.IntN(20), 10+rng.IntN(200)
		q := newSendQueue(maxFrames, maxBytes)
		var model [2][]string
		var dropped uint64
		size := func() (n, b int) {
			for _, m := range model {
				n += len(m)
				for _, f := range m {
					b += len(f)
				}
			}
			return
		}
		for op := range 2000 {
			if rng.IntN(3) > 0 {
				c := Class(rng.IntN(2))
				f := fmt.Sprintf("%d-%d-%s", round, op, make([]byte, rng.IntN(10)))
				q.push([]byte(f), c)
				model[c] = append(model[c], f)
				for n, b := size(); n > maxFrames || b > maxBytes; n, b = size() {
					v := Data
					if len(model[Data]) == 0 {
						v = Control
					}
					model[v] = model[v][1:]
					dropped++
				}
				continue
			}
			got, ok := q.pop()
			var want string
			wantOK := false
			for c := range model {
				if len(model[c]) > 0 {
					want, wantOK = model[c][0], true
					model[c] = model[c][1:]
					break
				}
			}
			if ok != wantOK || string(got) != want {
				t.Fatalf("seed %d round %d op %d: pop = %q,%v; model %q,%v", seed, round, op, got, ok, want, wantOK)
			}
		}
		if n, b := size(); q.len() != n || q.bytes != b || q.dropped != dropped {
			t.Fatalf("seed %d round %d: queue %d/%d/%d, model %d/%d/%d", seed, round, q.len(), q.bytes, q.dropped, n, b, dropped)
		}
	}
}

func TestSendQueuePushFront(t *testing.T) {
	q := newSendQueue(3, 100)
	q.push([]byte("d2"), Data)
	q.push([]byte("c1"), Control)
	q.pushFront([]byte("d1"), Data)
	if diff := cmp.Diff([]string{"c1", "d1", "d2"}, drainQueue(&q)); diff != "" {
		t.Errorf("pop order (-want +got):\n%s", diff)
	}
	// After pops the head slot is reused.
	q.push([]byte("d3"), Data)
	q.push([]byte("d4"), Data)
	q.pop()
	q.pushFront([]byte("d3'"), Data)
	q.push([]byte("d5"), Data)
	q.push([]byte("d6"), Data) // over the frame limit: the oldest, d3', goes
	if diff := cmp.Diff([]string{"d4", "d5", "d6"}, drainQueue(&q)); diff != "" {
		t.Errorf("pop order (-want +got):\n%s", diff)
	}
	if q.dropped != 1 {
		t.Errorf("dropped %d, want 1", q.dropped)
	}
}
