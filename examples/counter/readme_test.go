package counter_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rewindnet/rewind/authority"
	"github.com/rewindnet/rewind/examples/counter"
)

// readmeClient returns the Go program of the README's "Linking the client"
// section.
func readmeClient(t *testing.T, root string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "\n## Linking the client\n")
	if i < 0 {
		t.Fatal(`README.md has no "## Linking the client" section`)
	}
	s = s[i:]
	if j := strings.Index(s[1:], "\n## "); j >= 0 {
		s = s[:j+1]
	}
	start := strings.Index(s, "```go\n")
	if start < 0 {
		t.Fatal("the README's linking section has no Go block")
	}
	s = s[start+len("```go\n"):]
	end := strings.Index(s, "```")
	if end < 0 {
		t.Fatal("the README's Go block is not closed")
	}
	return s[:end]
}

// TestReadmeClient: the README's client program is the counter-client
// command, word for word, and it builds and runs as written from another
// module that requires this one, against an authority serving the counter
// game: three clicks counted, none of them corrected, on a fresh counter
// and on one that already holds clicks.
func TestReadmeClient(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program in a module of its own")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	prog := readmeClient(t, root)
	cmdSrc, err := os.ReadFile("cmd/counter-client/main.go")
	if err != nil {
		t.Fatal(err)
	}
	if prog != string(cmdSrc) {
		t.Fatal("the README's client program differs from examples/counter/cmd/counter-client/main.go: keep them the same")
	}

	// A game's module, elsewhere, requiring this one. Its go.mod lists
	// what `go mod tidy` would: this module and every module it builds
	// with, at this module's versions, so the build reads nothing that the
	// module cache of this module's own build lacks (with only this module
	// required, Go would look up the go.mod files of modules this module's
	// graph prunes, which a fresh module cache does not hold).
	dir := t.TempDir()
	ours, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	const self = "module github.com/rewindnet/rewind\n"
	if !strings.HasPrefix(string(ours), self) {
		t.Fatalf("go.mod does not start with %q", self)
	}
	gomod := "module example.com/mygame\n" + string(ours)[len(self):] +
		"\nrequire github.com/rewindnet/rewind v0.0.0\n\nreplace github.com/rewindnet/rewind => " + root + "\n"
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"go.mod": []byte(gomod), "go.sum": sum, "main.go": []byte(prog)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	exe := filepath.Join(dir, "mygame")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute) // a bound against a hang
	defer cancel()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build the README's program: %v", err)
	}
	build := exec.CommandContext(ctx, goCmd, "build", "-mod=mod", "-o", exe, ".")
	build.Dir = dir
	// Everything the build needs is in the module cache already (this
	// module's own dependencies, the same graph): no network.
	build.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=", "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build of the README's program in another module: %v\n%s", err, out)
	}

	cfg := authority.DefaultServerConfig("127.0.0.1:0", counter.Registry())
	srv, err := authority.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	defer func() {
		srv.Close()
		<-done
	}()
	for _, want := range []string{"clicks: 3", "clicks: 6"} {
		run := exec.CommandContext(ctx, exe, srv.Addr().String())
		var out bytes.Buffer
		run.Stdout, run.Stderr = &out, &out
		if err := run.Run(); err != nil {
			t.Fatalf("the README's program: %v\n%s", err, out.String())
		}
		if got := strings.TrimSpace(out.String()); got != want {
			t.Errorf("the README's program printed %q, want %q (no correction)", got, want)
		}
	}
}
