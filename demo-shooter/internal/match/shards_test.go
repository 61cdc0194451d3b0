package match

import (
	"errors"
	"slices"
	"testing"

	"github.com/rewindnet/rewind/authority/shardmap"
	"github.com/rewindnet/rewind/demo-shooter/game"
	"github.com/rewindnet/rewind/netcode"
)

// TestRegions: the arena's strips, the regions' owners and the -ranges
// they make, the moved region's destination.
func TestRegions(t *testing.T) {
	for _, tc := range []struct {
		x       float64
		regions int
		want    int
	}{
		{0, 3, 0}, {426, 3, 0}, {427, 3, 1}, {853, 3, 1}, {854, 3, 2}, {game.ArenaWidth - 1, 3, 2},
		{-50, 3, 0}, {game.ArenaWidth + 50, 3, 2}, {500, 1, 0}, {500, 0, 0},
	} {
		if got := Region(tc.x, tc.regions); got != tc.want {
			t.Errorf("Region(%v, %d) = %d, want %d", tc.x, tc.regions, got, tc.want)
		}
	}
	if got, want := rangesFlag(3, 3), "regions/0/=1,2;regions/1/=2,3;regions/2/=3,1"; got != want {
		t.Errorf("rangesFlag(3, 3) = %q, want %q", got, want)
	}
	if got, want := rangesFlag(2, 2), "regions/0/=1;regions/1/=2"; got != want {
		t.Errorf("rangesFlag(2, 2) = %q, want %q", got, want)
	}
	for r := range 3 {
		if !shardmap.Whole(RegionRange(r)).Contains(RegionRange(r) + "42") {
			t.Errorf("region %d's range does not hold its keys", r)
		}
	}
}

// TestRegionRegistry: a regioned call routes by the region byte after
// its arguments, which the game's function never sees; a call without a
// region (or one out of range) has no key and fails.
func TestRegionRegistry(t *testing.T) {
	reg := RegionRegistry(game.Registry, 3)()
	base := game.Registry()
	if !slices.Equal(reg.Names(), base.Names()) || len(reg.Layers()) != len(base.Layers()) {
		t.Fatalf("functions %v and %d layers, want %v and %d", reg.Names(), len(reg.Layers()), base.Names(), len(base.Layers()))
	}
	f, _ := reg.Lookup(game.FuncAim)
	args := append(game.AimArgs(1.5), 2)
	if key := f.Options.ShardKey(7, args); key != "regions/2/7" {
		t.Errorf("key %q, want regions/2/7", key)
	}
	for _, bad := range [][]byte{nil, append(game.AimArgs(1.5), 3)} {
		if key := f.Options.ShardKey(7, bad); key != "" {
			t.Errorf("key of %v: %q, want none", bad, key)
		}
	}
	// Run join then aim through the wrapper on a store, as the
	// authority does: the region byte is stripped (aim's 8-byte argument
	// decodes), and a missing region fails as bad arguments.
	ts := newTraceStore(t)
	ts.reg = reg
	id := func(seq uint64) netcode.CallID { return netcode.CallID{Creator: 7, Seq: seq} }
	if err := ts.run(id(1), 1e9, 0, game.FuncJoin, append(game.JoinArgs("ann"), 0), 1e9); err != nil {
		t.Fatalf("join: %v", err)
	}
	if err := ts.run(id(2), 2e9, 0, game.FuncAim, args, 2e9); err != nil {
		t.Fatalf("aim: %v", err)
	}
	if err := ts.run(id(3), 3e9, 0, game.FuncAim, game.AimArgs(1.5), 3e9); !errors.Is(err, game.ErrBadArgs) {
		t.Errorf("aim without a region: %v, want ErrBadArgs", err)
	}
}
