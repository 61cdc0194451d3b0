package physics

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRayShape(t *testing.T) {
	unitBox := Box(V(0, 0), V(2, 2))
	wall := Segment(V(0, 0), V(10, 0))
	tests := []struct {
		name  string
		sh    Shape
		extra float64
		o, d  Vec2
		maxS  float64
		want  hit
		ok    bool
	}{
		{"circle head on", Circle(1), 0, V(-5, 0), V(1, 0), 100, hit{4, V(-1, 0)}, true},
		{"circle tangent", Circle(1), 0, V(-5, 1), V(1, 0), 100, hit{5, V(0, 1)}, true},
		{"circle just missed", Circle(1), 0, V(-5, 1.0000001), V(1, 0), 100, hit{}, false},
		{"circle behind", Circle(1), 0, V(5, 0), V(1, 0), 100, hit{}, false},
		{"circle beyond max", Circle(1), 0, V(-5, 0), V(1, 0), 3.9, hit{}, false},
		{"circle at max inclusive", Circle(1), 0, V(-5, 0), V(1, 0), 4, hit{4, V(-1, 0)}, true},
		{"start inside circle", Circle(1), 0, V(0.5, 0), V(0, 1), 100, hit{0, V(1, 0)}, true},
		{"start at circle centre", Circle(1), 0, V(0, 0), V(0, 1), 100, hit{0, V(0, -1)}, true},
		{"start on circle surface", Circle(1), 0, V(1, 0), V(1, 0), 100, hit{0, V(1, 0)}, true},
		{"offset circle", Shape{Kind: KindCircle, A: V(3, 0), Radius: 1}, 0, V(-5, 0), V(1, 0), 100, hit{7, V(-1, 0)}, true},
		{"point exactly on ray", Point(V(3, 0)), 0, V(0, 0), V(1, 0), 100, hit{3, V(-1, 0)}, true},
		{"point beside ray", Point(V(3, 1e-9)), 0, V(0, 0), V(1, 0), 100, hit{}, false},
		{"segment crossed", wall, 0, V(5, -3), V(0, 1), 100, hit{3, V(0, -1)}, true},
		{"segment crossed from above", wall, 0, V(5, 3), V(0, -1), 100, hit{3, V(0, 1)}, true},
		{"segment end crossed", wall, 0, V(10, -3), V(0, 1), 100, hit{3, V(0, -1)}, true},
		{"segment missed past end", wall, 0, V(10.001, -3), V(0, 1), 100, hit{}, false},
		{"ray along segment line", wall, 0, V(-5, 0), V(1, 0), 100, hit{5, V(-1, 0)}, true},
		{"ray parallel to segment", wall, 0, V(-5, 1), V(1, 0), 100, hit{}, false},
		{"ray parallel inside thick segment", Capsule(V(0, 0), V(10, 0), 1), 0, V(-5, 0.5), V(1, 0), 100, hit{5 - math.Sqrt(0.75), V(-math.Sqrt(0.75), 0.5)}, true},
		{"ray starts on segment", wall, 0, V(4, 0), V(0, 1), 100, hit{0, V(0, -1)}, true},
		{"zero-length segment hit", Segment(V(2, 2), V(2, 2)), 0, V(2, -1), V(0, 1), 100, hit{3, V(0, -1)}, true},
		{"zero-length segment missed", Segment(V(2, 2), V(2, 2)), 0, V(2.1, -1), V(0, 1), 100, hit{}, false},
		{"zero-length capsule is a circle", Capsule(V(2, 2), V(2, 2), 1), 0, V(2, -2), V(0, 1), 100, hit{3, V(0, -1)}, true},
		{"capsule side", Capsule(V(0, 0), V(10, 0), 1), 0, V(5, 5), V(0, -1), 100, hit{4, V(0, 1)}, true},
		{"capsule cap", Capsule(V(0, 0), V(10, 0), 1), 0, V(-5, 0), V(1, 0), 100, hit{4, V(-1, 0)}, true},
		{"capsule tangent to side", Capsule(V(0, 0), V(10, 0), 1), 0, V(-5, 1), V(1, 0), 100, hit{5, V(0, 1)}, true},
		{"box face", unitBox, 0, V(-1, 1), V(1, 0), 100, hit{1, V(-1, 0)}, true},
		{"box from below", unitBox, 0, V(1, -4), V(0, 1), 100, hit{4, V(0, -1)}, true},
		{"box corner diagonal (edges tie, bottom first)", unitBox, 0, V(-1, -1), V(1, 1).Unit(), 100, hit{math.Sqrt2, V(0, -1)}, true},
		{"ray along box edge", unitBox, 0, V(-1, 0), V(1, 0), 100, hit{1, V(-1, 0)}, true},
		{"box missed", unitBox, 0, V(-1, 2.5), V(1, 0), 100, hit{}, false},
		{"start inside box", unitBox, 0, V(1, 1), V(1, 0), 100, hit{0, V(-1, 0)}, true},
		{"rounded box corner", unitBox, 1, V(-5, -5), V(1, 1).Unit(), 100, hit{5*math.Sqrt2 - 1, V(-1, -1).Unit()}, true},
		{"rounded box corner missed", unitBox, 1, V(-5, -0.5), V(1, -1).Unit(), 100, hit{}, false},
		{"swept circles tangent", Circle(1), 1, V(-5, 2), V(10, 0), 1, hit{0.5, V(0, 1)}, true},
		{"zero velocity apart", Circle(1), 1, V(-5, 0), V(0, 0), 1, hit{}, false},
		{"zero velocity overlapped", Circle(1), 1, V(-1.5, 0), V(0, 0), 1, hit{0, V(-1, 0)}, true},
		{"zero velocity touching", Circle(1), 1, V(-2, 0), V(0, 0), 1, hit{0, V(-1, 0)}, true},
		{"zero velocity at centre", Circle(1), 1, V(0, 0), V(0, 0), 1, hit{0, V(0, 0)}, true},
		{"swept circle against segment", wall, 1, V(5, -5), V(0, 10), 1, hit{0.4, V(0, -1)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := rayShape(tt.sh, tt.extra, tt.o, tt.d, tt.maxS)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v (hit %+v)", ok, tt.ok, got)
			}
			if !ok {
				return
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(hit{}), approx); diff != "" {
				t.Errorf("-want +got:\n%s", diff)
			}
		})
	}
}

// approx compares floats to 1e-12: the table's expected values are written
// in closed form, not in the narrowphase's operation order.
var approx = cmp.Comparer(func(a, b float64) bool { return math.Abs(a-b) <= 1e-12*math.Max(1, math.Abs(a)) })

func TestOverlap(t *testing.T) {
	tests := []struct {
		name   string
		a      Shape
		pa     Vec2
		b      Shape
		pb     Vec2
		want   bool
		wantSq float64
	}{
		{"circles touching", Circle(1), V(0, 0), Circle(2), V(3, 0), true, 9},
		{"circles apart", Circle(1), V(0, 0), Circle(2), V(3.0001, 0), false, 3.0001 * 3.0001},
		{"point in circle", Point(V(0, 0)), V(0.5, 0), Circle(1), V(0, 0), true, 0.25},
		{"point on segment", Point(V(0, 0)), V(5, 0), Segment(V(0, 0), V(10, 0)), V(0, 0), true, 0},
		{"segments crossing", Segment(V(-1, -1), V(1, 1)), V(0, 0), Segment(V(-1, 1), V(1, -1)), V(0, 0), true, 0},
		{"segments collinear overlapping", Segment(V(0, 0), V(4, 0)), V(0, 0), Segment(V(2, 0), V(6, 0)), V(0, 0), true, 0},
		{"segments parallel apart", Segment(V(0, 0), V(4, 0)), V(0, 0), Segment(V(0, 1), V(4, 1)), V(0, 0), false, 1},
		{"zero-length segments equal", Segment(V(1, 1), V(1, 1)), V(0, 0), Segment(V(1, 1), V(1, 1)), V(0, 0), true, 0},
		{"capsules touching", Capsule(V(0, 0), V(4, 0), 0.5), V(0, 0), Capsule(V(0, 1), V(4, 1), 0.5), V(0, 0), true, 1},
		{"segment through box", Segment(V(-5, 1), V(5, 1)), V(0, 0), Box(V(0, 0), V(2, 2)), V(0, 0), true, 0},
		{"segment beside box", Segment(V(-5, 3), V(5, 3)), V(0, 0), Box(V(0, 0), V(2, 2)), V(0, 0), false, 1},
		{"segment inside box", Segment(V(0.5, 0.5), V(1, 1)), V(0, 0), Box(V(0, 0), V(2, 2)), V(0, 0), true, 0},
		{"boxes sharing an edge", Box(V(0, 0), V(1, 1)), V(0, 0), Box(V(0, 0), V(1, 1)), V(1, 0), true, 0},
		{"boxes diagonal gap", Box(V(0, 0), V(1, 1)), V(0, 0), Box(V(0, 0), V(1, 1)), V(2, 2), false, 2},
		{"circle at box corner", Circle(math.Sqrt2), V(2, 2), Box(V(0, 0), V(1, 1)), V(0, 0), true, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := overlap(tt.a, tt.pa, tt.b, tt.pb); got != tt.want {
				t.Errorf("overlap = %v, want %v", got, tt.want)
			}
			if got := overlap(tt.b, tt.pb, tt.a, tt.pa); got != tt.want {
				t.Errorf("overlap swapped = %v, want %v", got, tt.want)
			}
			if got := coreDistSq(tt.a, tt.pa, tt.b, tt.pb); math.Abs(got-tt.wantSq) > 1e-12 {
				t.Errorf("coreDistSq = %v, want %v", got, tt.wantSq)
			}
		})
	}
}
