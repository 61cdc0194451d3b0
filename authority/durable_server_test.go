package authority_test

import (
	"context"
	"testing"
	"time"

	"github.com/rewindnet/rewind/archive"
	"github.com/rewindnet/rewind/authority"
	"github.com/rewindnet/rewind/authority/internal/testclient"
	"github.com/rewindnet/rewind/examples/counter"
	"github.com/rewindnet/rewind/netcode/wire"
)

func durableServerConfig(dir string) authority.ServerConfig {
	cfg := serverConfig()
	cfg.Data = archive.DefaultOptions(dir)
	cfg.Data.FlushEvery = 5 * time.Millisecond
	return cfg
}

// callOK makes one counter call and waits for its OK.
func callOK(t *testing.T, ctx context.Context, c *testclient.Client, name string) {
	t.Helper()
	id, err := c.Call("add", counter.AddArgs(name, 1), c.ServerNow(), 0)
	if err != nil {
		t.Fatal(err)
	}
	m := await(t, ctx, c, wire.KindCallResult, nil)
	if m.CallResult.ID != id || m.CallResult.Status != wire.CallOK {
		t.Fatalf("call %s: %+v", name, m.CallResult)
	}
}

// TestDurableServerRestart: a durable server closed and started again on
// its directory has every value and resumes the client's creator; each
// call it accepts is in its log before the answer leaves.
func TestDurableServerRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	srv, err := authority.NewServer(durableServerConfig(dir))
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	c, err := testclient.Dial(ctx, srv.Addr().String(), testclient.Config{Transport: testTransport()})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a", "b", "c"} {
		callOK(t, ctx, c, n)
	}
	if st := srv.Stats(); st.Archive.Log.Records != 4 { // a creator and three runs
		t.Fatalf("%d log records after 3 calls", st.Archive.Log.Records)
	}
	creator, token, seq := c.Creator(), c.Welcome().Resume, c.Seq()
	c.Close("bye")
	srv.Close()
	if err := <-served; err != nil {
		t.Fatal(err)
	}

	srv2 := start(t, durableServerConfig(dir))
	c2, err := testclient.Dial(ctx, srv2.Addr().String(), testclient.Config{Transport: testTransport(), Resume: token, Seq: seq})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close("bye")
	if c2.Creator() != creator {
		t.Fatalf("creator %d after the restart, want %d", c2.Creator(), creator)
	}
	for _, n := range []string{"d", "e"} {
		callOK(t, ctx, c2, n)
	}
	if st := srv2.Stats(); st.Archive.Log.Records != 2 || st.Node.Restored != 4 {
		t.Fatalf("%d log records after 2 calls, %d restored", st.Archive.Log.Records, st.Node.Restored)
	}
	if err := c2.Send(&wire.Message{Kind: wire.KindWatch, Watch: wire.Watch{Prefixes: []string{counter.Prefix}, Done: true}}); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	await(t, ctx, c2, wire.KindWatchDone, func(m *wire.Message) {
		if m.Kind == wire.KindValues {
			for _, v := range m.Values.Items {
				got[v.Path] = true
			}
		}
	})
	if len(got) != 5 {
		t.Fatalf("counters after the restart: %v", got)
	}
}
