package transport

import "fmt"

// Class is a frame's send priority.
type Class uint8

const (
	// Control frames leave before any queued Data frame and are dropped only
	// when the queue holds nothing else.
	Control Class = iota
	// Data frames leave in order after Control frames; on overflow the
	// oldest is dropped first.
	Data
	numClasses
)

func (c Class) String() string {
	switch c {
	case Control:
		return "control"
	case Data:
		return "data"
	}
	return fmt.Sprintf("Class(%d)", uint8(c))
}

// sendQueue is the pure core of a session's send side: a bounded two-class
// queue. Control frames pop before Data frames, each class in FIFO order.
// When a push exceeds maxFrames or maxBytes the oldest Data frame is evicted
// (the oldest Control frame once no Data remains) until both hold; every
// eviction is counted. Not safe for concurrent use.
type sendQueue struct {
	maxFrames, maxBytes int
	q                   [numClasses]fifo
	frames, bytes       int
	dropped             uint64
}

type fifo struct {
	items [][]byte
	head  int
}

func (f *fifo) len() int { return len(f.items) - f.head }

func (f *fifo) push(b []byte) { f.items = append(f.items, b) }

func (f *fifo) pop() []byte {
	b := f.items[f.head]
	f.items[f.head] = nil
	f.head++
	// Reclaim the consumed prefix once it dominates, keeping pops O(1)
	// amortised without letting the backing array grow forever.
	if f.head == len(f.items) {
		f.items, f.head = f.items[:0], 0
	} else if f.head > 64 && f.head*2 > len(f.items) {
		n := copy(f.items, f.items[f.head:])
		clear(f.items[n:])
		f.items, f.head = f.items[:n], 0
	}
	return b
}

func newSendQueue(maxFrames, maxBytes int) sendQueue {
	return sendQueue{maxFrames: maxFrames, maxBytes: maxBytes}
}

// push queues frame in class c and returns how many frames were evicted to
// make room (possibly frame itself, when it is Data and only Control frames
// are ahead of it and the limits still do not hold).
func (s *sendQueue) push(frame []byte, c Class) (evicted int) {
	s.q[c].push(frame)
	s.frames++
	s.bytes += len(frame)
	return s.evict()
}

// evict drops frames, oldest Data first, until the limits hold.
func (s *sendQueue) evict() (evicted int) {
	for s.frames > s.maxFrames || s.bytes > s.maxBytes {
		victim := Data
		if s.q[Data].len() == 0 {
			victim = Control
		}
		b := s.q[victim].pop()
		s.frames--
		s.bytes -= len(b)
		s.dropped++
		evicted++
	}
	return evicted
}

// pushFront queues frame at the head of class c: for a frame that was
// about to be written before the frames now queued. Limits apply as in push.
func (s *sendQueue) pushFront(frame []byte, c Class) (evicted int) {
	f := &s.q[c]
	if f.head > 0 {
		f.head--
		f.items[f.head] = frame
	} else {
		f.items = append(f.items, nil)
		copy(f.items[1:], f.items)
		f.items[0] = frame
	}
	s.frames++
	s.bytes += len(frame)
	return s.evict()
}

// pop returns the next frame to send, Control first.
func (s *sendQueue) pop() ([]byte, bool) {
	for c := range s.q {
		if s.q[c].len() > 0 {
			b := s.q[c].pop()
			s.frames--
			s.bytes -= len(b)
			return b, true
		}
	}
	return nil, false
}

// len returns the number of queued frames.
func (s *sendQueue) len() int { return s.frames }
