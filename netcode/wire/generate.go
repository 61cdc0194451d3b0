package wire

// The FlatBuffers Go code in ./fb is generated from schema/rewind.fbs and
// committed. `make generate` (go generate ./...) rebuilds it with flatc; the
// old files are removed first so a renamed table leaves nothing stale behind.
//go:generate sh -c "rm -f fb/*.go && flatc --go -o . schema/rewind.fbs && gofmt -w fb"
