package physics

import (
	"fmt"
	"math"
)

// Limits on coordinates and speeds. They keep every derived quantity (cell
// indices, squared distances, positions extrapolated over the whole time
// range) finite and exact enough to compare.
const (
	// MaxCoord bounds the magnitude of every coordinate, offset and radius
	// handed in (world units).
	MaxCoord = 1 << 30
	// MaxSpeed bounds the magnitude of each velocity component (world units
	// per second).
	MaxSpeed = 1 << 20
)

// Kind names the geometry of a Shape.
type Kind uint8

// Shape kinds.
const (
	KindPoint   Kind = iota + 1 // the point A
	KindCircle                  // centre A, radius Radius
	KindSegment                 // from A to B, no thickness
	KindCapsule                 // segment A–B thickened by Radius
	KindBox                     // axis-aligned box from Min=A to Max=B
)

func (k Kind) String() string {
	switch k {
	case KindPoint:
		return "point"
	case KindCircle:
		return "circle"
	case KindSegment:
		return "segment"
	case KindCapsule:
		return "capsule"
	case KindBox:
		return "box"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Shape is a rigid shape in the local frame of its body: a body at position
// p occupies the shape translated by p. Shapes do not rotate.
//
// Every shape is a core (a point, a segment or a box) thickened by Radius;
// point, segment and box have Radius 0. Use the constructors.
type Shape struct {
	Kind   Kind
	A, B   Vec2
	Radius float64
}

// Point returns the point shape at offset a.
func Point(a Vec2) Shape { return Shape{Kind: KindPoint, A: a} }

// Circle returns the circle of radius r centred on the body's position.
func Circle(r float64) Shape { return Shape{Kind: KindCircle, Radius: r} }

// Segment returns the segment from a to b.
func Segment(a, b Vec2) Shape { return Shape{Kind: KindSegment, A: a, B: b} }

// Capsule returns the segment from a to b thickened by r.
func Capsule(a, b Vec2, r float64) Shape { return Shape{Kind: KindCapsule, A: a, B: b, Radius: r} }

// Box returns the axis-aligned box with corners min and max.
func Box(min, max Vec2) Shape { return Shape{Kind: KindBox, A: min, B: max} }

// Bounds returns the shape's bounding box in its local frame.
func (s Shape) Bounds() AABB {
	switch s.Kind {
	case KindPoint, KindCircle:
		return AABB{s.A, s.A}.Inflate(s.Radius)
	case KindSegment, KindCapsule:
		return segBounds(s.A, s.B).Inflate(s.Radius)
	default:
		return AABB{s.A, s.B}
	}
}

// Validate reports whether s is well formed: a known kind, coordinates and
// radius finite and within MaxCoord, Radius ≥ 0 (and 0 for point, segment
// and box), Min ≤ Max for a box.
func (s Shape) Validate() error {
	if !s.A.within(MaxCoord) || !s.B.within(MaxCoord) {
		return fmt.Errorf("%w: coordinates must be finite and within ±%d", ErrShape, MaxCoord)
	}
	if math.IsNaN(s.Radius) || s.Radius < 0 || s.Radius > MaxCoord {
		return fmt.Errorf("%w: radius %v must be in [0, %d]", ErrShape, s.Radius, MaxCoord)
	}
	switch s.Kind {
	case KindCircle, KindCapsule:
	case KindPoint, KindSegment, KindBox:
		if s.Radius != 0 {
			return fmt.Errorf("%w: a %v has no radius", ErrShape, s.Kind)
		}
		if s.Kind == KindBox && (s.A.X > s.B.X || s.A.Y > s.B.Y) {
			return fmt.Errorf("%w: box min %v exceeds max %v", ErrShape, s.A, s.B)
		}
	default:
		return fmt.Errorf("%w: unknown kind %v", ErrShape, s.Kind)
	}
	return nil
}

// core kinds: every shape is one of these thickened by a radius.
const (
	corePoint = iota
	coreSeg
	coreBox
)

func (s Shape) core() int {
	switch s.Kind {
	case KindSegment, KindCapsule:
		return coreSeg
	case KindBox:
		return coreBox
	}
	return corePoint
}
