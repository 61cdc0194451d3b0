package sim

// DownArrival returns when the latest frame scheduled on client i's down
// link arrives (virtual time): after the end of a run, a frame the client
// has not received yet is still in flight.
func (s *Sim) DownArrival(i int) int64 { return s.clients[i].down.last }
