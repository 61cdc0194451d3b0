package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rewindnet/rewind/authority"
	"github.com/rewindnet/rewind/authority/internal/field"
	"github.com/rewindnet/rewind/netcode"
	"github.com/rewindnet/rewind/netcode/lagsim"
	"github.com/rewindnet/rewind/netcode/transport"
	"github.com/rewindnet/rewind/timesync"
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
	dialParallel             int
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
	o.dialParallel = 32
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
	HitsSeen               int     `json:"hits_seen"`
	HitsConfirmed          int     `json:"hits_confirmed"`
	HitsConfirmedPct       float64 `json:"hits_confirmed_pct"`
	ConfirmMinusRTTMsP50   float64 `json:"confirm_minus_rtt_ms_p50"`
	ConfirmMinusRTTMsP99   float64 `json:"confirm_minus_rtt_ms_p99"`
	RTTMs                  float64 `json:"rtt_ms"`
	DownKbpsPerPlayer      float64 `json:"down_kbps_per_player"`
	UpKbpsPerPlayer        float64 `json:"up_kbps_per_player"`
	DownBytesPerPlayerS    float64 `json:"down_bytes_per_player_s"`
	VisiblePerPlayer       float64 `json:"visible_per_player"`
	CallsFailed            uint64  `json:"calls_failed"`
	Disconnects            int     `json:"disconnects"`
	LoadStart              float64 `json:"load_start"`
	Load                   float64 `json:"load"`
	LoadGenCPUPct          float64 `json:"loadgen_cpu_pct"`
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
	cfg.Node.Limits.MaxSessions = maxPlayers + 64
	cfg.Node.Limits.MaxPendingSessions = maxPlayers + 64
	// Every simulated player dials from 127.0.0.1.
	cfg.Transport.HandshakeRatePerHost = 1e6
	cfg.Transport.HandshakeRate = 1e6
	cfg.Transport.AcceptQueue = 4096
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
		"-fec", fmt.Sprintf("%d,%d", o.dataShards, o.parityShards), "-authority-cpuprofile", o.cpuProfile)
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
		Cores: runtime.NumCPU(), LoadStart: loadAvg()}
	ch, err := startChild(o)
	if err != nil {
		return r, err
	}
	defer ch.stop()
	bots, err := dialBots(ctx, ch.addr, o)
	defer func() {
		for _, b := range bots {
			if b != nil {
				b.c.Close()
			}
		}
	}()
	if err != nil {
		return r, err
	}
	workers := max(1, runtime.GOMAXPROCS(0))
	shards := make([][]*bot, workers)
	for i, b := range bots {
		shards[i%workers] = append(shards[i%workers], b)
	}
	play := func(d time.Duration, active bool) {
		var wg sync.WaitGroup
		for _, sh := range shards {
			wg.Add(1)
			go func() {
				defer wg.Done()
				drive(sh, o, d, active)
			}()
		}
		wg.Wait()
	}
	play(o.warmup, true)

	base := make([]netcode.Stats, len(bots))
	for i, b := range bots {
		b.reset()
		base[i] = b.c.Stats()
	}
	self0, _ := procCPU(os.Getpid())
	cpu0, err := procCPU(ch.cmd.Process.Pid)
	if err != nil {
		return r, err
	}
	start := time.Now()
	play(o.duration, true)
	span := time.Since(start)
	cpu1, err := procCPU(ch.cmd.Process.Pid)
	if err != nil {
		return r, err
	}
	self1, _ := procCPU(os.Getpid())
	r.Load = loadAvg()
	r.AuthorityCPUPct = 100 * float64(cpu1-cpu0) / float64(span)
	r.AuthorityCPUPctPerPlay = r.AuthorityCPUPct / float64(o.players)
	r.LoadGenCPUPct = 100 * float64(self1-self0) / float64(span)

	var calls, failed uint64
	var in, out uint64
	var lat []float64
	var rtt, visible float64
	for i, b := range bots {
		st := b.c.Stats()
		calls += st.Calls - base[i].Calls
		failed += st.Failed - base[i].Failed
		in += st.BytesIn - base[i].BytesIn
		out += st.BytesOut - base[i].BytesOut
		rtt += float64(st.RTT) / 1e6
		r.HitsSeen += b.hitsSeen
		r.HitsConfirmed += b.hitsConfirmed
		r.Disconnects += b.disconnects
		visible += float64(len(b.visible))
		for _, l := range b.latencies {
			lat = append(lat, l-float64(st.RTT)/1e6)
		}
	}
	n := float64(o.players)
	secs := span.Seconds()
	r.CallsPerS = float64(calls) / secs
	r.CallsPerPlayerS = r.CallsPerS / n
	if r.CallsPerS > 0 {
		r.AuthorityCPUUsPerCall = r.AuthorityCPUPct * 1e4 / r.CallsPerS
	}
	r.CallsFailed = failed
	r.DownBytesPerPlayerS = float64(in) / secs / n
	r.DownKbpsPerPlayer = r.DownBytesPerPlayerS * 8 / 1000
	r.UpKbpsPerPlayer = float64(out) / secs / n * 8 / 1000
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

	// Let the answers of the span's last calls arrive, then measure the
	// players idle: sessions and clocks only.
	play(min(settleLimit, 2*time.Second), false)
	if o.idle > 0 {
		cpu0, _ := procCPU(ch.cmd.Process.Pid)
		start := time.Now()
		play(o.idle, false)
		cpu1, _ := procCPU(ch.cmd.Process.Pid)
		r.IdleCPUPctPerPlayer = 100 * float64(cpu1-cpu0) / float64(time.Since(start)) / n
	}
	return r, nil
}

func percentile(sorted []float64, p float64) float64 {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// dialBots connects the players, dialParallel at a time.
func dialBots(ctx context.Context, addr string, o options) ([]*bot, error) {
	bots := make([]*bot, o.players)
	errs := make(chan error, o.players)
	sem := make(chan struct{}, o.dialParallel)
	var wg sync.WaitGroup
	for i := range bots {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			seed := o.seed<<20 | uint64(i)
			dctx, cancel := context.WithTimeout(ctx, o.dialTimeout)
			defer cancel()
			opts := netcode.Options{Registry: field.Registry(), Transport: transport.Internet()}
			opts.Transport.DataShards, opts.Transport.ParityShards = o.dataShards, o.parityShards
			opts.TimeSync = timesync.DefaultConfig()
			if o.idleSync > 0 {
				opts.TimeSync.IdleInterval = o.idleSync
			}
			if o.profile != (lagsim.Profile{}) {
				var n uint64
				opts.PacketConn = func() (net.PacketConn, error) {
					n++
					return lagsim.Listen("127.0.0.1:0", lagsim.Options{Seed: seed<<8 | n, Out: o.profile, In: o.profile})
				}
			}
			c, err := netcode.Dial(dctx, addr, opts)
			if err != nil {
				errs <- fmt.Errorf("player %d: %w", i, err)
				return
			}
			bots[i] = newBot(c, o, seed)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return bots, err
	}
	return bots, nil
}

// callInfo is what a bot remembers of a call until its result.
type callInfo struct {
	at      time.Time
	shoot   bool
	hit     bool // the prediction hit
	measure bool // made in the measured span
}

// bot is one simulated player. One worker goroutine drives it.
type bot struct {
	c       *netcode.Client
	o       options
	rng     *rand.Rand
	id      uint32
	entity  string
	placed  bool
	vx, vy  int16
	turnAt  time.Time
	shootAt time.Time
	calls   map[netcode.CallID]callInfo
	visible map[uint32]struct{}

	// measured
	measuring     bool
	hitsSeen      int
	hitsConfirmed int
	disconnects   int
	latencies     []float64 // ms, call to result
}

func newBot(c *netcode.Client, o options, seed uint64) *bot {
	b := &bot{c: c, o: o, rng: rand.New(rand.NewPCG(seed, 0xf1e1d)), id: c.Creator(),
		calls: make(map[netcode.CallID]callInfo), visible: make(map[uint32]struct{})}
	b.entity = field.Entity(b.id)
	return b
}

func (b *bot) reset() {
	b.measuring = true
	b.hitsSeen, b.hitsConfirmed, b.disconnects = 0, 0, 0
	b.latencies = b.latencies[:0]
}

// drive plays bots for d: a frame every 1/rate, each bot updating and,
// when active, moving every frame and shooting every shootEvery.
func drive(bots []*bot, o options, d time.Duration, active bool) {
	frame := time.Duration(float64(time.Second) / o.rate)
	tick := time.NewTicker(frame)
	defer tick.Stop()
	end := time.Now().Add(d)
	for now := time.Now(); now.Before(end); now = <-tick.C {
		for _, b := range bots {
			b.frame(now, active)
		}
	}
}

func (b *bot) frame(now time.Time, active bool) {
	corrected := map[netcode.CallID]bool{}
	evs := b.c.Update()
	for _, e := range evs {
		switch e.Kind {
		case netcode.EventCorrection:
			corrected[e.Call] = true
		case netcode.EventEnter, netcode.EventLeave:
			if id, ok := entityID(e.Path); ok && id != b.id {
				if e.Kind == netcode.EventEnter {
					b.visible[id] = struct{}{}
				} else {
					delete(b.visible, id)
				}
			}
		case netcode.EventDisconnected:
			b.disconnects++
		case netcode.EventConnected:
			b.placed = false
			b.c.WatchNear(field.Prefix, b.entity, b.o.radius)
		}
	}
	for _, e := range evs {
		if e.Kind != netcode.EventResult {
			continue
		}
		ci, ok := b.calls[e.Call]
		if !ok {
			continue
		}
		delete(b.calls, e.Call)
		if !ci.measure {
			continue
		}
		b.latencies = append(b.latencies, float64(now.Sub(ci.at))/1e6)
		if ci.shoot && ci.hit {
			b.hitsSeen++
			if e.Err == nil && !corrected[e.Call] {
				b.hitsConfirmed++
			}
		}
	}
	if !active || !b.c.Connected() {
		return
	}
	if !b.placed {
		b.c.WatchNear(field.Prefix, b.entity, b.o.radius)
		b.turn(now)
		id, err := b.c.Call(field.FuncMove, field.MoveArgs(b.vx, b.vy, b.rng.Float64()*b.o.side, b.rng.Float64()*b.o.side))
		if err == nil {
			b.placed = true
			b.calls[id] = callInfo{at: now, measure: b.measuring}
		}
		return
	}
	if now.After(b.turnAt) {
		b.turn(now)
	}
	b.steer()
	if id, err := b.c.Call(field.FuncMove, field.MoveArgs(b.vx, b.vy, 0, 0)); err == nil {
		b.calls[id] = callInfo{at: now, measure: b.measuring}
	}
	if now.After(b.shootAt) {
		b.shootAt = now.Add(b.o.shootEvery)
		b.shoot(now)
	}
}

// turn picks a new heading at 60 to 200 units a second for 1 to 3 s.
func (b *bot) turn(now time.Time) {
	a := b.rng.Float64() * 2 * math.Pi
	s := 60 + b.rng.Float64()*140
	b.vx, b.vy = int16(s*math.Cos(a)), int16(s*math.Sin(a))
	b.turnAt = now.Add(time.Second + time.Duration(b.rng.Float64()*float64(2*time.Second)))
}

// steer turns back into the field near its edges.
func (b *bot) steer() {
	v, ok := b.c.Read(field.PosPath(b.id))
	if !ok {
		return
	}
	p, err := field.DecodePos(v)
	if err != nil {
		return
	}
	margin := 50.0
	if (p.X < margin && b.vx < 0) || (p.X > b.o.side-margin && b.vx > 0) {
		b.vx = -b.vx
	}
	if (p.Y < margin && b.vy < 0) || (p.Y > b.o.side-margin && b.vy > 0) {
		b.vy = -b.vy
	}
}

// shoot aims at the nearest visible player as the authority will see it
// for this call (at the view time), and shoots.
func (b *bot) shoot(now time.Time) {
	w := b.c.Now()
	view := w - int64(b.c.ViewDelay())
	mv, ok := b.c.Read(field.PosPath(b.id))
	if !ok {
		return
	}
	mp, err := field.DecodePos(mv)
	if err != nil {
		return
	}
	ox, oy := mp.At(w)
	best, bestD := uint32(0), math.Inf(1)
	var bx, by float64
	for id := range b.visible {
		tv, ok := b.c.ReadAt(field.PosPath(id), view)
		if !ok {
			continue
		}
		tp, err := field.DecodePos(tv)
		if err != nil {
			continue
		}
		x, y := tp.At(view)
		if d := math.Hypot(x-ox, y-oy); d < bestD && d <= field.Range {
			best, bestD, bx, by = id, d, x, y
		}
	}
	if best == 0 {
		return
	}
	angle := math.Atan2(by-oy, bx-ox) + (b.rng.Float64()-0.5)*0.02
	id, err := b.c.Call(field.FuncShoot, field.ShootArgs(best, float32(angle)))
	if err != nil {
		return
	}
	hit := false
	if sv, ok := b.c.Read(field.ShotPath(b.id)); ok {
		if s, err := field.DecodeShot(sv); err == nil {
			hit = s.Hit
		}
	}
	b.calls[id] = callInfo{at: now, shoot: true, hit: hit, measure: b.measuring}
}

// entityID parses "players/<id>/".
func entityID(entity string) (uint32, bool) {
	s, ok := strings.CutPrefix(entity, field.Prefix)
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, "/")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err == nil
}
