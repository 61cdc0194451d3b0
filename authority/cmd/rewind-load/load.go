package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rewindnet/rewind/archive"
	"github.com/rewindnet/rewind/authority"
	"github.com/rewindnet/rewind/authority/internal/field"
	"github.com/rewindnet/rewind/netcode/lagsim"
	"github.com/rewindnet/rewind/netcode/transport"
)

// options are the flags of one run.
type options struct {
	players                  int
	rate                     float64
	duration, warmup, idle   time.Duration
	lag                      string
	radius, neighbours       float64
	flush, coalesce          time.Duration
	idleSync                 time.Duration // the players' timesync IdleInterval (0: default)
	dataShards, parityShards int
	fec                      string
	report, plot, commit     string
	seed                     uint64
	cpuProfile               string // the authority writes its CPU profile here
	profile                  lagsim.Profile
	side                     float64 // the field's side, from neighbours and radius
	shootEvery, dialTimeout  time.Duration
	loops                    int           // player loops (goroutines, sockets)
	tick                     time.Duration // a player loop's period
	sockBuf                  int           // the authority's SocketBuffer (-1: the preset's)
	data                     string        // durable authorities: each run's archive in a fresh directory under it ("": in memory)
	dataDir                  string        // with -serve: this run's archive directory
}

// Bounds of a run.
const (
	maxPlayers  = 20000
	listenLine  = "rewind-load authority listening on "
	settleLimit = 10 * time.Second
)

func (o *options) validate() error {
	switch {
	case o.players < 1 || o.players > maxPlayers:
		return fmt.Errorf("-players %d outside [1, %d]", o.players, maxPlayers)
	case o.rate <= 0 || o.rate > 120:
		return fmt.Errorf("-rate %v outside (0, 120]", o.rate)
	case o.duration <= 0 || o.warmup < 0 || o.idle < 0:
		return fmt.Errorf("-duration %v, -warmup %v, -idle %v: want a positive span", o.duration, o.warmup, o.idle)
	case o.tick <= 0 || o.tick > 10*time.Millisecond:
		return fmt.Errorf("-loop-tick %v outside (0, 10ms]", o.tick)
	case o.loops < 0 || o.loops > 64 || (o.loops > 0 && o.players > o.loops*maxPerLoop):
		return fmt.Errorf("-loops %d outside [1, 64] or too few for %d players", o.loops, o.players)
	case o.sockBuf < -1:
		return fmt.Errorf("-sockbuf %d: want bytes, 0 or -1", o.sockBuf)
	case o.radius <= 0 || o.neighbours <= 0:
		return fmt.Errorf("-radius %v, -neighbours %v must be positive", o.radius, o.neighbours)
	}
	p, err := lagsim.Preset(o.lag)
	if err != nil {
		return fmt.Errorf("-lag: %w", err)
	}
	o.profile = p
	o.shootEvery = 500 * time.Millisecond
	o.dialTimeout = 60 * time.Second
	return nil
}

// fieldSide is the side of a square field on which n players spread
// evenly have about k others within radius r.
func fieldSide(n int, r, k float64) float64 {
	return math.Min(math.Sqrt(float64(n)*math.Pi*r*r/k), field.MaxCoord)
}

// Report is one run's result. CPU figures are percent of one core.
type Report struct {
	Players                int     `json:"players"`
	Rate                   float64 `json:"rate"`
	DurationS              float64 `json:"duration_s"`
	Lag                    string  `json:"lag"`
	Radius                 float64 `json:"radius"`
	FieldSide              float64 `json:"field_side"`
	FlushMs                float64 `json:"flush_ms"`
	CoalesceMs             float64 `json:"coalesce_ms"`
	FEC                    string  `json:"fec"`
	IdleSyncMs             float64 `json:"idle_sync_ms"`
	AuthorityCPUPctPerPlay float64 `json:"authority_cpu_pct_per_player"`
	AuthorityCPUPct        float64 `json:"authority_cpu_pct"`
	IdleCPUPctPerPlayer    float64 `json:"idle_cpu_pct_per_player,omitempty"`
	CallsPerS              float64 `json:"calls_per_s"`
	AuthorityCPUUsPerCall  float64 `json:"authority_cpu_us_per_call"`
	CallsPerPlayerS        float64 `json:"calls_per_player_s"`
	RateAchievedPct        float64 `json:"rate_achieved_pct"`       // moves made of the -rate a second asked of each player
	UnderDriven            bool    `json:"under_driven"`            // the players made under 95 % of the moves asked: the run does not measure the authority at this load
	UDPDrops               uint64  `json:"udp_rcvbuf_drops"`        // the machine's UDP receive-buffer drops during the measured span (/proc/net/snmp)
	SocketBuffer           int     `json:"socket_buffer"`           // the authority socket's buffers asked, bytes (0: the system's default)
	Durable                bool    `json:"durable,omitempty"`       // the authority kept an archive (-data): write-ahead log, snapshots
	ArchiveBytes           int64   `json:"archive_bytes,omitempty"` // the archive's size on disk at the end of the run
	HitsSeen               int     `json:"hits_seen"`
	HitsConfirmed          int     `json:"hits_confirmed"`
	HitsConfirmedPct       float64 `json:"hits_confirmed_pct"`
	ConfirmMinusRTTMsP50   float64 `json:"confirm_minus_rtt_ms_p50"`
	ConfirmMinusRTTMsP99   float64 `json:"confirm_minus_rtt_ms_p99"`
	RTTMs                  float64 `json:"rtt_ms"`
	DownKbpsPerPlayer      float64 `json:"down_kbps_per_player"`
	UpKbpsPerPlayer        float64 `json:"up_kbps_per_player"`
	DownBytesPerPlayerS    float64 `json:"down_bytes_per_player_s"`
	DownUDPKbpsPerPlayer   float64 `json:"down_udp_kbps_per_player"` // on the wire: transport, FEC and UDP payload
	UpUDPKbpsPerPlayer     float64 `json:"up_udp_kbps_per_player"`
	VisiblePerPlayer       float64 `json:"visible_per_player"`
	CallsFailed            uint64  `json:"calls_failed"`
	Disconnects            int     `json:"disconnects"`
	LoadStart              float64 `json:"load_start"`
	Load                   float64 `json:"load"`
	LoadGenCPUPct          float64 `json:"loadgen_cpu_pct"`
	IdleLoadGenCPUPct      float64 `json:"loadgen_idle_cpu_pct,omitempty"`
	Loops                  int     `json:"loadgen_loops"`
	Cores                  int     `json:"cores"`
	Commit                 string  `json:"commit"`
	GoVersion              string  `json:"go_version"`
}

// serveAuthority is the child: the field game's authority on listen.
func serveAuthority(ctx context.Context, listen string, o options, out io.Writer) error {
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	cfg := authority.DefaultServerConfig(listen, field.Registry())
	cfg.Node.FlushEvery = o.flush
	cfg.Transport.Coalesce = o.coalesce
	cfg.Transport.DataShards, cfg.Transport.ParityShards = o.dataShards, o.parityShards
	if o.sockBuf >= 0 {
		cfg.Transport.SocketBuffer = o.sockBuf
	}
	cfg.Node.Limits.MaxSessions = maxPlayers + 64
	cfg.Node.Limits.MaxPendingSessions = maxPlayers + 64
	// Every simulated player dials from 127.0.0.1.
	cfg.Transport.HandshakeRatePerHost = 1e6
	cfg.Transport.HandshakeRate = 1e6
	cfg.Transport.AcceptQueue = 4096
	if o.dataDir != "" {
		cfg.Data = archive.DefaultOptions(o.dataDir)
	}
	srv, err := authority.NewServer(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s%s\n", listenLine, srv.Addr())
	return srv.Serve(ctx)
}

// child is the authority process.
type child struct {
	cmd  *exec.Cmd
	addr string
}

func startChild(o options) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-serve", "-flush", o.flush.String(), "-coalesce", o.coalesce.String(),
		"-fec", fmt.Sprintf("%d,%d", o.dataShards, o.parityShards), "-authority-cpuprofile", o.cpuProfile,
		"-sockbuf", strconv.Itoa(o.sockBuf), "-data-dir", o.dataDir)
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), listenLine); ok {
				lines <- a
			}
		}
	}()
	select {
	case a := <-lines:
		return &child{cmd: cmd, addr: a}, nil
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("the authority did not listen within 20 s")
	}
}

func (c *child) stop() {
	c.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		c.cmd.Process.Kill()
		<-done
	}
}

// procCPU returns the user+system CPU time of pid from /proc (10 ms
// resolution).
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad times", pid)
	}
	return time.Duration(u+st) * 10 * time.Millisecond, nil // USER_HZ is 100 on Linux
}

// udpDrops returns the machine's UDP receive-buffer drops so far
// (RcvbufErrors in /proc/net/snmp), 0 when unreadable.
func udpDrops() uint64 {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return 0
	}
	var head []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if head == nil {
			head = f
			continue
		}
		for i, h := range head {
			if h == "RcvbufErrors" && i < len(f) {
				v, _ := strconv.ParseUint(f[i], 10, 64)
				return v
			}
		}
	}
	return 0
}

func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// measure runs one player count.
func measure(ctx context.Context, o options) (Report, error) {
	o.side = fieldSide(o.players, o.radius, o.neighbours)
	r := Report{Players: o.players, Rate: o.rate, DurationS: o.duration.Seconds(), Lag: o.lag, Radius: o.radius,
		FieldSide: o.side, FlushMs: float64(o.flush) / 1e6, CoalesceMs: float64(o.coalesce) / 1e6, FEC: o.fec, IdleSyncMs: float64(o.idleSync) / 1e6, Commit: o.commit, GoVersion: runtime.Version(),
		Cores: runtime.NumCPU(), LoadStart: loadAvg(), Loops: o.loops, SocketBuffer: o.sockBuf, Durable: o.data != ""}
	if o.sockBuf < 0 {
		r.SocketBuffer = transport.Internet().SocketBuffer
	}
	if o.data != "" {
		// A fresh archive for each run: one left by an earlier run would
		// be restored.
		dir, err := os.MkdirTemp(o.data, "run-")
		if err != nil {
			return r, err
		}
		defer os.RemoveAll(dir)
		o.dataDir = dir
	}
	ch, err := startChild(o)
	if err != nil {
		return r, err
	}
	defer ch.stop()
	raddr, err := net.ResolveUDPAddr("udp4", ch.addr)
	if err != nil {
		return r, err
	}
	loops := make([]*loop, o.loops)
	var wg sync.WaitGroup
	defer func() {
		for _, l := range loops {
			if l != nil {
				l.stop.Store(true)
			}
		}
		wg.Wait()
	}()
	for i := range loops {
		n := o.players / o.loops
		if i < o.players%o.loops {
			n++
		}
		l, err := newLoop(o, i, n, raddr, o.seed)
		if err != nil {
			return r, err
		}
		loops[i] = l
		wg.Add(1)
		go func() { defer wg.Done(); l.run() }()
	}
	// Wait until every player is connected with a synced clock.
	sum := func() loopStats {
		var t loopStats
		for _, l := range loops {
			l.mu.Lock()
			t.ready += l.stats.ready
			t.dead += l.stats.dead
			if t.firstDead == nil {
				t.firstDead = l.stats.firstDead
			}
			l.mu.Unlock()
		}
		return t
	}
	for end := time.Now().Add(o.dialTimeout); ; {
		st := sum()
		if st.dead > 0 {
			return r, fmt.Errorf("%d players failed to connect, the first: %w", st.dead, st.firstDead)
		}
		if st.ready == o.players {
			break
		}
		if time.Now().After(end) {
			return r, fmt.Errorf("%d of %d players connected within %v", st.ready, o.players, o.dialTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	setAll := func(f func(l *loop)) {
		for _, l := range loops {
			f(l)
		}
	}
	setAll(func(l *loop) { l.active.Store(true) })
	time.Sleep(o.warmup)

	type base struct{ calls, failed, in, out uint64 }
	bases := make(map[*player]base)
	setAll(func(l *loop) {
		l.mu.Lock()
		for _, p := range l.players {
			st := p.core.Stats()
			bases[p] = base{st.Calls, st.Failed, st.BytesIn, st.BytesOut}
			p.hitsSeen, p.hitsConfirmed, p.disconnects, p.moves = 0, 0, 0, 0
			p.latencies = p.latencies[:0]
			p.udpIn, p.udpOut = 0, 0
		}
		l.measuring.Store(true)
		l.mu.Unlock()
	})
	drops0 := udpDrops()
	self0, _ := procCPU(os.Getpid())
	cpu0, err := procCPU(ch.cmd.Process.Pid)
	if err != nil {
		return r, err
	}
	start := time.Now()
	time.Sleep(o.duration)
	var calls, failed, in, out, udpIn, udpOut uint64
	setAll(func(l *loop) {
		l.mu.Lock()
		l.measuring.Store(false)
		for _, p := range l.players {
			st := p.core.Stats()
			calls += st.Calls - bases[p].calls
			failed += st.Failed - bases[p].failed
			in += st.BytesIn - bases[p].in
			out += st.BytesOut - bases[p].out
			udpIn += p.udpIn
			udpOut += p.udpOut
		}
		l.mu.Unlock()
	})
	span := time.Since(start)
	cpu1, err := procCPU(ch.cmd.Process.Pid)
	if err != nil {
		return r, err
	}
	self1, _ := procCPU(os.Getpid())
	r.UDPDrops = udpDrops() - drops0
	r.Load = loadAvg()
	r.AuthorityCPUPct = 100 * float64(cpu1-cpu0) / float64(span)
	r.AuthorityCPUPctPerPlay = r.AuthorityCPUPct / float64(o.players)
	r.LoadGenCPUPct = 100 * float64(self1-self0) / float64(span)

	// Let the answers of the span's last calls arrive, then read the
	// measured calls' results, then measure the players idle: sessions
	// and clocks only.
	setAll(func(l *loop) { l.active.Store(false) })
	time.Sleep(min(settleLimit, 2*time.Second))
	var lat []float64
	var rtt, visible float64
	setAll(func(l *loop) {
		l.mu.Lock()
		for _, p := range l.players {
			st := p.core.Stats()
			rtt += float64(st.RTT) / 1e6
			r.HitsSeen += p.hitsSeen
			r.HitsConfirmed += p.hitsConfirmed
			r.Disconnects += p.disconnects
			visible += float64(len(p.visible))
			for _, v := range p.latencies {
				lat = append(lat, v-float64(st.RTT)/1e6)
			}
		}
		l.mu.Unlock()
	})
	n := float64(o.players)
	secs := span.Seconds()
	r.CallsPerS = float64(calls) / secs
	r.CallsPerPlayerS = r.CallsPerS / n
	var moves uint64
	setAll(func(l *loop) {
		l.mu.Lock()
		for _, p := range l.players {
			moves += p.moves
		}
		l.mu.Unlock()
	})
	r.RateAchievedPct = 100 * float64(moves) / secs / n / o.rate
	r.UnderDriven = r.RateAchievedPct < 95
	if r.CallsPerS > 0 {
		r.AuthorityCPUUsPerCall = r.AuthorityCPUPct * 1e4 / r.CallsPerS
	}
	r.CallsFailed = failed
	r.DownBytesPerPlayerS = float64(in) / secs / n
	r.DownKbpsPerPlayer = r.DownBytesPerPlayerS * 8 / 1000
	r.UpKbpsPerPlayer = float64(out) / secs / n * 8 / 1000
	r.DownUDPKbpsPerPlayer = float64(udpIn) / secs / n * 8 / 1000
	r.UpUDPKbpsPerPlayer = float64(udpOut) / secs / n * 8 / 1000
	r.RTTMs = rtt / n
	r.VisiblePerPlayer = visible / n
	if r.HitsSeen > 0 {
		r.HitsConfirmedPct = 100 * float64(r.HitsConfirmed) / float64(r.HitsSeen)
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		r.ConfirmMinusRTTMsP50 = percentile(lat, 0.5)
		r.ConfirmMinusRTTMsP99 = percentile(lat, 0.99)
	}
	if o.idle > 0 {
		cpu0, _ := procCPU(ch.cmd.Process.Pid)
		self0, _ := procCPU(os.Getpid())
		start := time.Now()
		time.Sleep(o.idle)
		cpu1, _ := procCPU(ch.cmd.Process.Pid)
		self1, _ := procCPU(os.Getpid())
		d := float64(time.Since(start))
		r.IdleCPUPctPerPlayer = 100 * float64(cpu1-cpu0) / d / n
		r.IdleLoadGenCPUPct = 100 * float64(self1-self0) / d
	}
	if o.dataDir != "" {
		r.ArchiveBytes = dirSize(o.dataDir)
	}
	return r, nil
}

func percentile(sorted []float64, p float64) float64 {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// dirSize is the bytes of the regular files under dir (0 if unreadable).
func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
