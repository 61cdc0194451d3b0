// Package archive is Rewind's durable storage: a write-ahead log with group
// commit, snapshot blocks of final values, checksummed self-recovering
// records and Reed-Solomon erasure-coded blocks across several
// directories. The authority uses it to come back after a crash; tools and
// replays read it.
//
// # The canonical loop
//
//	a, err := archive.Open(opts)            // recovers what is on disk
//	st := a.Recovered()                     // rebuild from st.ScanFinals and st.Entries
//	a.Forget()
//	for {
//		a.Append(now, &entry)             // each accepted write: buffered, durable within FlushEvery
//		a.AddFinal(valuesThatBecameFinal) // from the store's finality
//		a.Snapshot(horizon, logCut, meta) // now and then: a block, in the background
//	}
//	a.Close()
//
// # Rules
//
//  1. An entry is durable once Durable() has reached its Now (one flusher
//     goroutine writes and fdatasyncs every mirror every FlushEvery). A
//     crash loses at most the entries of the last flush window, never an
//     older one, and a torn record never reads back as data.
//  2. Once the log fails to write or sync (a full or failing disk), Append
//     returns an error wrapping ErrLogFailed for good: the owner must
//     refuse the writes it cannot log. Nothing already durable is lost.
//  3. Snapshot(horizon, logCut, meta) declares that every final value
//     below horizon was given to AddFinal, and that no log entry stamped
//     before logCut is needed any more once they are in a block. The
//     owner passes meta, its own state as of the snapshot, and gets it
//     back from Recovered.
//  4. Values given to AddFinal must never change: they are kept, not
//     copied, until written.
//  5. Only one goroutine appends and snapshots; Stats, Durable and Err may
//     be called from any.
//
// The on-disk formats (record, segment, block, shard, manifest) are
// specified in docs/DESIGN.md, section archive, well enough for another
// program to read them; the rewind-archive command verifies, repairs,
// summarises and dumps an archive.
package archive
