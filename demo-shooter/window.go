package main

import (
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"log/slog"
	"math"
	"os"
	"sync"
	"time"

	"github.com/hajimehoshi/ebiten/v2"
	"github.com/hajimehoshi/ebiten/v2/inpututil"

	"github.com/rewindnet/rewind/archive"
	"github.com/rewindnet/rewind/authority"
	"github.com/rewindnet/rewind/demo-shooter/game"
	"github.com/rewindnet/rewind/demo-shooter/internal/match"
	"github.com/rewindnet/rewind/netcode"
	"github.com/rewindnet/rewind/netcode/lagsim"
)

// Input pacing: aim is sent at most every aimEvery and only when it turned
// by more than aimTurn; a human's join or respawn is retried every
// retryEvery.
const (
	aimEvery   = 100 * time.Millisecond
	aimTurn    = 0.02 // radians
	retryEvery = time.Second
)

// Ending the window. A signal or a closed window ends the game loop at its
// next step; then the embedded authority shuts down gracefully and the
// clients close, cut short after -shutdown-wait (600 ms by default, so that
// the program ends within a second). A signal the loop has not acted on
// after forceAfter (a window that is not stepping) is carried out from the
// signal's side: the same shutdown, then exit.
const (
	closeGrace = 100 * time.Millisecond
	forceAfter = 300 * time.Millisecond
)

// readyLine opens the line the window prints on its first step, once it
// is open and playing (tests wait for it).
const readyLine = "shooter: window open"

// pane is one view: a human player's client, the link it sits behind and
// where it is drawn.
type pane struct {
	p     *match.Player
	lag   *match.Lag
	x, y  float64         // the arena's top-left on screen
	scale float64         // screen px per arena px
	panel image.Rectangle // the HUD and graphs on screen
	keys  game.Keys
	aim   float64
	aimAt time.Time
	tryAt time.Time
	// dead: the own player is dead in the view; respawnAt is the earliest
	// respawn (synced time); respawned is when it came back (wall time).
	dead      bool
	respawnAt int64
	respawned time.Time
}

// app is the Ebiten game: the panes, the bots and the window's state.
type app struct {
	ctx    context.Context // ends on SIGINT or SIGTERM
	out    io.Writer       // the program's messages (stderr)
	addr   string          // the authority's address
	srv    *embedded       // nil with -connect
	wait   time.Duration   // -shutdown-wait
	panes  []*pane
	bots   []*match.Player
	botLag *match.Lag
	// clients are every client, closed at shutdown.
	clients []*netcode.Client
	once    sync.Once // shutdown
	help    bool
	overlay overlays
	comp    bool // lag compensation on
	// autopilot: bots play the panes' players; the keys and mouse only
	// switch views and links.
	autopilot bool
	cut       bool // the human links are cut (L)
	frame     int
	now       time.Time // wall time of the last step
	quit      string    // why the loop ended

	shotFile string // -screenshot: where to save the last frame
	frames   int
	shotWhen string // -screenshot-when
	saveErr  error
	saved    bool
}

// window runs the window mode until the window is closed or ctx ends (a
// signal); either way the embedded authority is shut down before it
// returns.
func window(ctx context.Context, cfg *config, stderr io.Writer) error {
	if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
		return errNoDisplay
	}
	a := &app{ctx: ctx, out: stderr, wait: cfg.shutdownWait, overlay: cfg.overlays, comp: !cfg.noLagComp, autopilot: cfg.autopilot,
		shotFile: cfg.screenshot, frames: cfg.frames, shotWhen: cfg.shotWhen}
	defer a.shutdown()
	a.addr = cfg.connect
	bind := ":0"
	if a.addr == "" {
		srv, err := startEmbedded(stderr, a.wait, cfg.data)
		if err != nil {
			return err
		}
		a.srv = srv
		a.addr = srv.srv.Addr().String()
		bind = "127.0.0.1:0"
	}
	lags := []lagsim.Profile{cfg.lag}
	if cfg.split {
		lags = append(lags, cfg.splitLag)
	}
	for i, prof := range lags {
		lag, err := match.NewLag(bind, prof, cfg.seed<<16|uint64(i)<<8)
		if err != nil {
			return err
		}
		c, err := a.dial(lag)
		if err != nil {
			return err
		}
		var pilot *game.Bot
		if cfg.autopilot {
			pilot = game.NewBot(cfg.seed<<8 | 0x80 | uint64(i))
		}
		p, err := match.NewPlayer(c, fmt.Sprintf("you%d", i+1), pilot)
		if err != nil {
			return err
		}
		c.SetLagCompensation(a.comp)
		a.panes = append(a.panes, &pane{p: p, lag: lag, scale: 1})
	}
	// The bots share a link of their own under the first pane's profile,
	// so 1–7 changes the whole match's network like a switch at the
	// authority would, and L cuts only the human's.
	botLag, err := match.NewLag(bind, cfg.lag, cfg.seed<<16|0xff<<8)
	if err != nil {
		return err
	}
	a.botLag = botLag
	for i := range cfg.bots {
		c, err := a.dial(botLag)
		if err != nil {
			return err
		}
		p, err := match.NewPlayer(c, fmt.Sprintf("bot%d", i), game.NewBot(cfg.seed<<8|uint64(i)))
		if err != nil {
			return err
		}
		a.bots = append(a.bots, p)
	}
	a.layout()

	ebiten.SetWindowSize(windowSize(a.Layout(0, 0)))
	ebiten.SetWindowResizingMode(ebiten.WindowResizingModeEnabled)
	ebiten.SetWindowTitle("Rewind shooter — " + cfg.lag.Name)
	ebiten.SetTPS(60)
	ebiten.SetRunnableOnUnfocused(true)
	ebiten.SetWindowClosingHandled(true)
	stopWatch := a.watchSignal()
	err = ebiten.RunGame(a)
	stopWatch()
	if errors.Is(err, ebiten.Termination) {
		err = nil
	}
	if err == nil {
		err = a.saveErr
	}
	return err
}

// dial connects a client behind lag; a signal cancels it.
func (a *app) dial(lag *match.Lag) (*netcode.Client, error) {
	dctx, cancel := context.WithTimeout(a.ctx, 20*time.Second)
	defer cancel()
	c, err := netcode.Dial(dctx, a.addr, netcode.Options{Registry: game.Registry(), PacketConn: lag.PacketConn})
	if err != nil {
		return nil, err
	}
	a.clients = append(a.clients, c)
	return c, nil
}

// watchSignal carries out a signal the game loop does not act on within
// forceAfter. It returns the function that stops watching.
func (a *app) watchSignal() (stop func()) {
	done := make(chan struct{})
	go func() {
		select {
		case <-done:
			return
		case <-a.ctx.Done():
		}
		t := time.NewTimer(forceAfter)
		defer t.Stop()
		select {
		case <-done:
			return
		case <-t.C:
		}
		fmt.Fprintf(a.out, "shooter: interrupted; the window is not stepping, ending without it\n")
		a.shutdown()
		os.Exit(0)
	}()
	return func() { close(done) }
}

// shutdown closes every client and shuts the embedded authority down, at
// once and within the -shutdown-wait; it runs once.
func (a *app) shutdown() {
	a.once.Do(func() {
		start := time.Now()
		// The clients first: each ends its session and waits for the
		// authority's acknowledgement, which leaves the authority no session
		// to end. They get two thirds of the time; a client still closing
		// then is left to end with the process, and the authority ends its
		// session itself in the rest of the time.
		var wg sync.WaitGroup
		for _, c := range a.clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.Close()
			}()
		}
		closed := make(chan struct{})
		go func() {
			wg.Wait()
			close(closed)
		}()
		t := time.NewTimer(a.wait * 2 / 3)
		defer t.Stop()
		select {
		case <-closed:
		case <-t.C:
		}
		if a.srv != nil {
			a.srv.stop(start.Add(a.wait))
		}
	})
}

// embedded is the authority the window serves on loopback in this
// process.
type embedded struct {
	srv    *authority.Server
	wait   time.Duration // how long a graceful shutdown may take
	log    *slog.Logger
	start  time.Time
	served chan error
}

// startEmbedded starts the window's authority; with data, durable in that
// directory (the match is recorded there, for -replay).
func startEmbedded(stderr io.Writer, wait time.Duration, data string) (*embedded, error) {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg := authority.DefaultServerConfig("127.0.0.1:0", game.Registry())
	cfg.Logger = log
	if data != "" {
		cfg.Data = archive.DefaultOptions(data)
		cfg.Data.Logger = log
	}
	// A session's close waits at most this long for the client's
	// acknowledgement, so that the window ends within a second.
	cfg.Transport.CloseLinger = wait
	srv, err := authority.NewServer(cfg)
	if err != nil {
		return nil, err
	}
	e := &embedded{srv: srv, wait: wait, log: log, start: time.Now(), served: make(chan error, 1)}
	go func() { e.served <- srv.Serve(context.Background()) }()
	return e, nil
}

// stop shuts the authority down gracefully, closing it at once at
// deadline, and logs what it did. It returns by deadline plus closeGrace
// even if the sessions are still closing (they end with the process).
func (e *embedded) stop(deadline time.Time) {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	res := make(chan error, 1)
	go func() {
		err := e.srv.Shutdown(ctx)
		if serr := <-e.served; err == nil {
			err = serr
		}
		res <- err
	}()
	t := time.NewTimer(time.Until(deadline) + closeGrace)
	defer t.Stop()
	var err error
	select {
	case err = <-res:
	case <-t.C:
		err = context.DeadlineExceeded
	}
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("%w (after %v)", match.ErrCutShort, e.wait)
	}
	match.LogStopped(e.log, e.srv.Stats(), time.Since(e.start), err)
}

// Update is the fixed step (60 a second): input, then every client's
// frame. Nothing here depends on how often Draw runs.
func (a *app) Update() error {
	switch {
	case a.saved || a.saveErr != nil:
		a.quit = "screenshot taken"
	case a.ctx.Err() != nil:
		a.quit = "interrupted"
	case ebiten.IsWindowBeingClosed():
		a.quit = "window closed"
	}
	if a.quit != "" {
		if a.quit != "screenshot taken" {
			fmt.Fprintf(a.out, "shooter: %s, shutting down\n", a.quit)
		}
		return ebiten.Termination
	}
	a.frame++
	now := time.Now()
	a.now = now
	if a.frame == 1 {
		where := a.addr
		if a.srv != nil {
			where += " (the embedded authority)"
		}
		fmt.Fprintf(a.out, "%s: playing against %s; Ctrl-C or closing the window quits\n", readyLine, where)
	}
	a.input(now)
	for _, pn := range a.panes {
		for _, ev := range pn.p.Frame(now) {
			switch ev.Kind {
			case netcode.EventDisconnected:
				fmt.Fprintf(a.out, "shooter: %s: connection lost (%s); reconnecting\n", pn.p.Name, pn.p.Link.Why)
			case netcode.EventConnected:
				if l := &pn.p.Link; l.Back.Equal(now) {
					fmt.Fprintf(a.out, "shooter: %s: connected again (%s)\n", pn.p.Name, l.Again())
				}
			}
		}
		pn.join(now)
	}
	for _, b := range a.bots {
		b.Frame(now)
	}
	return nil
}

// input reads the keyboard and mouse and makes the human's calls, on
// every pane (split views play the same moves under different links).
func (a *app) input(now time.Time) {
	if inpututil.IsKeyJustPressed(ebiten.KeyF1) {
		a.help = !a.help
	}
	if inpututil.IsKeyJustPressed(ebiten.KeyF2) {
		a.overlay.ghost = !a.overlay.ghost
	}
	if inpututil.IsKeyJustPressed(ebiten.KeyF3) {
		a.overlay.hitboxes = !a.overlay.hitboxes
	}
	if inpututil.IsKeyJustPressed(ebiten.KeyF4) {
		a.overlay.corrections = !a.overlay.corrections
	}
	if inpututil.IsKeyJustPressed(ebiten.KeyP) {
		a.comp = !a.comp
		for _, pn := range a.panes {
			pn.p.C.SetLagCompensation(a.comp)
		}
	}
	if inpututil.IsKeyJustPressed(ebiten.KeyL) {
		a.cut = !a.cut
		for _, pn := range a.panes {
			pn.lag.SetCut(a.cut)
		}
	}
	names := lagsim.PresetNames()
	for i := range min(len(names), 7) {
		if inpututil.IsKeyJustPressed(ebiten.Key1 + ebiten.Key(i)) {
			if prof, err := lagsim.Preset(names[i]); err == nil {
				a.panes[0].lag.Set(prof)
				a.botLag.Set(prof)
			}
		}
	}
	var keys game.Keys
	for k, key := range map[ebiten.Key]game.Keys{ebiten.KeyW: game.KeyUp, ebiten.KeyA: game.KeyLeft, ebiten.KeyS: game.KeyDown, ebiten.KeyD: game.KeyRight} {
		if ebiten.IsKeyPressed(k) {
			keys |= key
		}
	}
	if a.autopilot {
		return
	}
	mx, my := ebiten.CursorPosition()
	shoot := inpututil.IsMouseButtonJustPressed(ebiten.MouseButtonLeft)
	gravity := inpututil.IsKeyJustPressed(ebiten.KeyG)
	pull := !ebiten.IsKeyPressed(ebiten.KeyShift)
	for _, pn := range a.panes {
		me, ok := game.PlayerAt(pn.p.View(), pn.p.Me(), pn.p.C.Now()+1)
		if !ok || !me.Life.Alive() {
			continue
		}
		if keys != pn.keys {
			if pn.p.Call(game.Action{Name: game.FuncSetKeys, Args: game.SetKeysArgs(keys)}) == nil {
				pn.keys = keys
			}
		}
		// Aim from the drawn own position to the cursor, in arena px.
		ax, ay := (float64(mx)-pn.x)/pn.scale, (float64(my)-pn.y)/pn.scale
		angle := math.Atan2(ay-me.Pos.Y, ax-me.Pos.X)
		if shoot {
			pn.p.Call(game.Action{Name: game.FuncShoot, Args: game.ShootArgs(angle)})
			pn.aim, pn.aimAt = angle, now
		} else if math.Abs(angleDiff(angle, pn.aim)) > aimTurn && now.Sub(pn.aimAt) >= aimEvery {
			if pn.p.Call(game.Action{Name: game.FuncAim, Args: game.AimArgs(angle)}) == nil {
				pn.aim, pn.aimAt = angle, now
			}
		}
		if gravity {
			pn.p.Call(game.Action{Name: game.FuncGravity, Args: game.GravityArgs(pull)})
		}
	}
}

// join follows the human's player's life, and makes it join, and respawn
// when dead and ready.
func (pn *pane) join(now time.Time) {
	t := pn.p.C.Now()
	me, ok := game.PlayerAt(pn.p.View(), pn.p.Me(), t+1)
	switch dead := ok && !me.Life.Alive(); {
	case dead:
		pn.respawnAt = me.Life.RespawnAt()
	case pn.dead && ok:
		pn.respawned = now
	}
	pn.dead = ok && !me.Life.Alive()
	if pn.p.Bot != nil || !pn.p.C.Connected() || now.Sub(pn.tryAt) < retryEvery {
		return // a bot joins and respawns by itself
	}
	switch {
	case !ok:
		pn.tryAt = now
		pn.p.Call(game.Action{Name: game.FuncJoin, Args: game.JoinArgs(pn.p.Name)})
	case !me.Life.Alive() && t >= me.Life.RespawnAt():
		pn.tryAt = now
		pn.keys = 0
		pn.p.Call(game.Action{Name: game.FuncRespawn})
	}
}

func angleDiff(a, b float64) float64 {
	d := math.Mod(a-b+math.Pi, 2*math.Pi)
	if d < 0 {
		d += 2 * math.Pi
	}
	return d - math.Pi
}
