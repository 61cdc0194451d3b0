// Package deploy holds the tests of the deployment files: the Dockerfile
// at the repository's root, the Kubernetes manifests (kubernetes/) and the
// Agones Fleet (agones/). No image is built and no cluster is needed: the
// Dockerfile's own build command makes the binary, which must be static
// and run from an empty directory; kubectl renders every kustomization,
// and each rendered document is decoded strictly into the Kubernetes API
// types (or, for Agones, a struct mirroring the fields used) and checked
// against the flags the binary takes.
package deploy

import (
	"bufio"
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// root is the repository's root, where the Dockerfile is.
const root = ".."

// dockerfile is the Dockerfile's build command and final stage.
type dockerfile struct {
	program string   // ARG PROGRAM's default
	build   []string // the RUN CGO_ENABLED=0 go build ... line's words, env first
	final   []string // the lines of the last stage
}

func readDockerfile(t *testing.T) dockerfile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var d dockerfile
	var cont string
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if strings.HasSuffix(line, "\\") { // a continued instruction
			cont += strings.TrimSuffix(line, "\\") + " "
			continue
		}
		line, cont = cont+line, ""
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "FROM ") {
			d.final = nil
		}
		d.final = append(d.final, line)
		if v, ok := strings.CutPrefix(line, "ARG PROGRAM="); ok {
			d.program = v
		}
		if v, ok := strings.CutPrefix(line, "RUN "); ok && strings.Contains(v, " go build ") {
			d.build = shellWords(t, strings.ReplaceAll(v, "${PROGRAM}", d.program))
		}
	}
	if d.build == nil || d.program == "" {
		t.Fatalf("Dockerfile: no ARG PROGRAM or RUN ... go build line")
	}
	return d
}

// shellWords splits a command line as sh would for the quoting the
// Dockerfile uses (double quotes, no expansions).
func shellWords(t *testing.T, s string) []string {
	var out []string
	var w strings.Builder
	in, quoted := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, in = !quoted, true
		case r == ' ' && !quoted:
			if in {
				out = append(out, w.String())
				w.Reset()
				in = false
			}
		default:
			w.WriteRune(r)
			in = true
		}
	}
	if quoted {
		t.Fatalf("unbalanced quotes in %q", s)
	}
	if in {
		out = append(out, w.String())
	}
	return out
}

var (
	buildOnce sync.Once
	buildBin  string
	buildErr  error
)

// binary builds the authority with the Dockerfile's build command, once
// per test binary, and returns its path.
func binary(t *testing.T) string {
	t.Helper()
	d := readDockerfile(t)
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "rewind-deploy-")
		if err != nil {
			buildErr = err
			return
		}
		buildBin = filepath.Join(dir, "authority")
		env := os.Environ()
		var args []string
		for i, w := range d.build {
			switch {
			case args == nil && strings.Contains(w, "=") && w != "go":
				env = append(env, w) // VAR=value before the command
			case w == "go":
				args = []string{}
			case i > 0 && d.build[i-1] == "-o":
				args = append(args, buildBin)
			default:
				args = append(args, w)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir, cmd.Env = root, env
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildBin != "" {
		os.RemoveAll(filepath.Dir(buildBin))
	}
	os.Exit(code)
}

// TestDockerfile: a static build (CGO_ENABLED=0) of the authority, a
// final stage on an empty base running as an unprivileged user with the
// binary as its entry point.
func TestDockerfile(t *testing.T) {
	d := readDockerfile(t)
	if d.build[0] != "CGO_ENABLED=0" {
		t.Errorf("build %q: want CGO_ENABLED=0", d.build)
	}
	if d.program != "./authority/cmd/authority" {
		t.Errorf("default PROGRAM %s", d.program)
	}
	want := map[string]bool{"FROM scratch": false, `ENTRYPOINT ["/authority"]`: false}
	user := regexp.MustCompile(`^USER ([0-9]+):([0-9]+)$`)
	nonRoot := false
	for _, l := range d.final {
		if _, ok := want[l]; ok {
			want[l] = true
		}
		if m := user.FindStringSubmatch(l); m != nil && m[1] != "0" && m[2] != "0" {
			nonRoot = true
		}
	}
	for l, seen := range want {
		if !seen {
			t.Errorf("the final stage lacks %s:\n%s", l, strings.Join(d.final, "\n"))
		}
	}
	if !nonRoot {
		t.Errorf("the final stage does not run as a numeric non-root user")
	}
}

// TestStaticBinaryRunsFromEmptyDir: the binary the Dockerfile builds links
// no shared library and needs no interpreter (it runs on an empty base),
// and started from an empty directory with an empty environment, as in
// the image, it serves, becomes ready, writes its archive under the
// directory and stops cleanly on SIGTERM.
func TestStaticBinaryRunsFromEmptyDir(t *testing.T) {
	bin := binary(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	libs, _ := f.ImportedLibraries()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("the binary asks for an interpreter (dynamically linked)")
		}
	}
	f.Close()
	if len(libs) > 0 {
		t.Errorf("the binary links %v", libs)
	}

	empty := t.TempDir()
	exe := filepath.Join(empty, "authority")
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "./authority", "-listen", "127.0.0.1:0", "-http", "127.0.0.1:0",
		"-data", "data", "-log-format", "json", "-functions", "counter")
	cmd.Dir, cmd.Env = empty, []string{}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill() // by its PID, if the test fails before it stops
	var logs strings.Builder
	httpAddr := make(chan string, 1)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.WriteString(sc.Text() + "\n")
			var rec map[string]any
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == "http endpoint listening" {
				httpAddr <- fmt.Sprint(rec["addr"])
			}
		}
	}()
	var addr string
	select {
	case addr = <-httpAddr:
	case <-ctx.Done():
		t.Fatal("the endpoint never listened")
	}
	ready := false
	for !ready && ctx.Err() == nil {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			ready = resp.StatusCode == http.StatusOK
		}
		if !ready {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if !ready {
		t.Fatal("never ready")
	}
	if _, err := os.Stat(filepath.Join(empty, "data", "MANIFEST.0")); err != nil {
		t.Errorf("no archive in the directory: %v", err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-copied // EOF: the process exited (or the context's end killed it)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("after SIGTERM: %v\n%s", err, logs.String())
	}
}
