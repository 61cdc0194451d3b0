// Package wire is Rewind's wire protocol: the messages authorities and
// clients exchange, and the codec that packs them into frames.
//
// Every message is a FlatBuffers table (schema/rewind.fbs; generated Go in
// package fb). This package wraps them in plain Go types (Hello, Values,
// Call, ...) so callers never touch FlatBuffers, and adds what FlatBuffers
// lacks: many messages per frame, a path dictionary per direction, compact
// batches, and checked decoding of hostile input.
//
// # Using it
//
// Each connection has one Encoder for the frames it sends and one Decoder
// for the frames it receives, created with the same Limits on both ends:
//
//	enc, err := wire.NewEncoder(wire.Limits{}) // zero fields: defaults
//	dec, err := wire.NewDecoder(wire.Limits{})
//
// Building a frame (append-style; buf is reused from frame to frame):
//
//	buf = enc.BeginFrame(buf[:0])
//	buf, err = enc.AppendValues(buf, &wire.Values{Items: batch})
//	buf, err = enc.AppendPing(buf, &wire.Ping{Seq: n})
//	send(buf) // the transport length-prefixes it
//
// Reading one (m is reused from message to message):
//
//	if err := dec.Start(frame); err != nil { close the session }
//	for {
//		err := dec.Next(&m)
//		if err == io.EOF { break }
//		if err != nil { close the session }
//		switch m.Kind {
//		case wire.KindValues:
//			for i := range m.Values.Items { apply(&m.Values.Items[i]) }
//		case wire.KindPing: ...
//		}
//	}
//
// # Rules
//
//  1. Deliver every frame an Encoder returns to the peer's Decoder, once
//     and in order (a KCP stream does). The two halves of a path dictionary
//     stay equal only that way; a new connection starts a new pair.
//  2. An Append error leaves dst and the dictionary as before the call, so
//     the frame built so far can still be sent. Nothing else is undone.
//  3. A Decoder error means a broken or hostile peer: close the session.
//     The error is sticky for the rest of the frame. Every message is
//     checked in full before Next returns it, so a message is applied whole
//     or not at all.
//  4. Aliasing: byte slices in a decoded message (Value.Value, Hello.Token,
//     Hello.Nonce, Hello.Resume, Welcome.Resume, Call.Args) point into the
//     frame, and the slices of m
//     (Items, Locks, Prefixes, Outputs, Reads) are reused by the next Next
//     with the same m. Copy what you keep before reusing either. Strings
//     are copies.
//  5. Both ends must agree on Limits.MaxPaths; other limits need only the
//     sender's to be within the receiver's, or the receiver rejects.
//  6. Encoders and Decoders are not safe for concurrent use.
//
// # Call results
//
// A CallResult of a call that ran carries Outputs, the values it wrote, and
// Reads, the read locks of that run: for each path the authority read, the
// Start time of the value it saw and the End time it read at. A client that
// predicted the call compares them with its own run's reads; a path whose
// Start differs names the value (its writer is Start.Creator) that made the
// prediction wrong. Reads is empty for failed and rejected calls and in
// results from peers older than the field. Output and read paths travel in
// full, not through the dictionary; at most Limits.MaxLocks reads, each
// with Start < End, or the decoder rejects the message.
//
// A Call may carry Digest, the digest of the caller's prediction
// (netcode.Outcome.Digest). When the authority's run has that digest and
// its outputs are valid, it may answer with a matched CallResult: status
// ok, Matched set, no Outputs and no Reads, and no Values message of the
// outputs before it; the caller takes its prediction for the outcome.
// Either field is absent (0, false) from peers older than it.
//
// # Resume tokens
//
// Welcome.Resume is an opaque token, at most Limits.MaxTextBytes long, that
// an authority issues so the peer can resume the session after losing it:
// the peer keeps it and sends it back as Hello.Resume on its next
// connection. The wire only carries the bytes; what they mean and how long
// they are honoured is the authority's business (see package authority). An
// empty Welcome.Resume means the authority does not resume sessions; an
// empty Hello.Resume asks for a new session. Both fields are appended to
// their tables, so messages from older peers decode with them empty.
//
// # Watch snapshots
//
// An authority answers each prefix of a Watch at once with a snapshot of
// its current valid values. A Watch with Done set also asks for a
// WatchDone{Prefix} right after each prefix's snapshot and before any later
// delivery of that prefix, so the watcher knows which of the values it
// holds the snapshot no longer has: deleted paths, and values invalidated
// while it was not watching. Done is appended to Watch (a Watch from an
// older client decodes with it false) and WatchDone is sent only to a
// watcher that asked, so neither end needs to know the other's age. A
// WatchDone prefix obeys the limits of a Watch prefix.
//
// # Spatial watches
//
// A Watch whose Area has a Kind (appended fields) covers one prefix of
// entities ("players/", each entity "players/<key>/") and only those
// inside the area: within Radius of Entity's position, following it
// (AreaNear), or inside a box (AreaRegion). The authority sends an entity
// that enters whole (its snapshot) followed by a WatchDone for the entity
// prefix, its changes while it stays, and a Leave{Prefix} (kind 17) when
// it leaves. An authority that predates the fields watches the whole
// prefix.
//
// # Frame format
//
// A frame is the version byte ProtocolVersion followed by messages, each a
// kind byte (Kind), a uvarint body length and a FlatBuffers body whose root
// is the kind's table. Kinds, table fields and enum values are append-only.
// The transport adds the outer length prefix.
//
// # Path dictionary
//
// Each direction has a dictionary of at most Limits.MaxPaths entries. The
// Encoder gives a new path the next free id, or, when full, the id a CLOCK
// sweep picks (an id used since the hand last passed gets a second chance;
// an id used by the message being encoded is never taken), and puts a
// PathDefs message {id, path} before the message that uses it. The Decoder
// keeps no eviction state: it applies each PathDefs as it comes, so it
// follows whatever the Encoder chose. One message may use at most MaxPaths
// distinct paths.
//
// # Batch records
//
// Values, Write and ValidStates carry a base Time (the first item's), an
// item count and the items packed back to back in one [ubyte] vector,
// because a FlatBuffers table per value costs more bytes than the value
// (see docs/DESIGN.md). A record is:
//
//	header  1 byte: bits 0-1 State; 2 Flags byte follows; 3 Version
//	        differs from base; 4 Creator differs from base; 5 nil value;
//	        6 locks follow; 7 reserved (must be 0)
//	path id uvarint
//	nanos   zigzag varint, Time.Nanos - base.Nanos (wrapping)
//	version uvarint, if bit 3          creator uvarint, if bit 4
//	flags   1 byte, if bit 2
//	value   uvarint length and bytes, unless bit 5
//	locks   if bit 6: uvarint count, then per lock the path id and Start
//	        and End, each as zigzag nanos - base.Nanos, uvarint version,
//	        uvarint creator
//
// ValidStates records are header (bits 0-1, 3, 4 only), path id and time.
// A 64-player position update (8-byte value, own creator and time) takes
// about 18 bytes per value on the wire.
package wire
