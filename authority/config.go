package authority

import (
	"errors"
	"fmt"
	"time"

	"github.com/rewindnet/rewind/netcode"
	"github.com/rewindnet/rewind/netcode/wire"
)

// Errors of the authority package.
var (
	ErrBadConfig     = errors.New("authority: bad config")
	ErrTooManyConns  = errors.New("authority: too many sessions")
	ErrUnknownSess   = errors.New("authority: unknown session")
	ErrAuth          = errors.New("authority: authentication failed")
	ErrPermission    = errors.New("authority: write not permitted")
	ErrRateLimited   = errors.New("authority: rate limit exceeded")
	ErrProtocol      = errors.New("authority: protocol violation")
	ErrTooManyWatchs = errors.New("authority: too many watches")
)

// Limits bound what one session may make the node do. Every limit is
// enforced per session, so a session over its limits never affects others.
type Limits struct {
	// MaxSessions caps the players: sessions that said Hello. A Hello
	// beyond it is refused (CodeOverload); a resumed player's old session
	// gives up its seat first.
	MaxSessions int
	// MaxPendingSessions caps the sessions that have not said Hello yet,
	// apart from the players; a new one makes the oldest give way.
	MaxPendingSessions int
	// HelloTimeout is how long a session may take to say Hello after it
	// connected before it is closed.
	HelloTimeout time.Duration

	WatchesPerSession int     // prefixes watched at once
	CallsPerSecond    float64 // sustained calls per second (burst: one second's worth)
	WritesPerSecond   float64 // sustained raw values written per second
	BytesPerSecond    float64 // sustained bytes received per second
	// MessagesPerSecond bounds the messages a session may have handled
	// per second (burst: one second's worth); each prefix of a Watch or
	// Unwatch counts as one. Charged before each message is handled.
	MessagesPerSecond float64
	// SnapshotValuesPerSecond bounds the work of a session's watch
	// snapshots: values queued, or paths visited that had none, per
	// second (burst: one second's worth). A watch whose snapshot would
	// cost more than is left is refused before more than that is done;
	// a prefix holding more than this many paths cannot be watched whole.
	SnapshotValuesPerSecond float64
	// MaxInboundPathBytes bounds the bytes of the paths a session has
	// defined in its path dictionary (the node holds them for it; the
	// wire allows Wire.MaxPaths × Wire.MaxPathBytes, 4 MiB by default).
	// Beyond it the session is closed.
	MaxInboundPathBytes int

	// FailoverCalls bounds the calls of a creator resumed here after its
	// authority failed (its session taken over from a failed member of
	// the cluster) that the node accepts older than the change window:
	// the calls its client made before and during the failover, sent
	// again with their ids. Each must be stamped no later than the
	// moment the creator was taken over here, arrive within the failover
	// window (MaxChangeAge) after the takeover completed here, and be
	// stamped above this node's horizon and closed time and every live
	// peer's closed time, which wait for that window (a final value
	// never changes); the rest are refused as late, as is every such
	// call once the resumed session ends. Zero: none (every call must be
	// inside the change window).
	FailoverCalls int

	Strikes      int // refusals tolerated within StrikeWindow before disconnecting (see the package doc)
	StrikeWindow time.Duration
	// MaxPendingOutbound bounds the watch deliveries queued for a session
	// between flushes; beyond it the session is disconnected as too slow
	// (it reconnects to a fresh snapshot) rather than lose values.
	MaxPendingOutbound int
	// MaxAreaEntities bounds the entities a spatial watch holds at once:
	// the nearest ones (zero: DefaultMaxAreaEntities).
	MaxAreaEntities int
}

// DefaultLimits suit an action game: a player sends inputs at up to 60 Hz.
func DefaultLimits() Limits {
	return Limits{
		MaxSessions:        4096,
		MaxPendingSessions: 256,
		HelloTimeout:       5 * time.Second,

		WatchesPerSession: 64,
		CallsPerSecond:    120,
		WritesPerSecond:   240,
		FailoverCalls:     120,
		BytesPerSecond:    256 << 10,

		MessagesPerSecond:       1024,
		SnapshotValuesPerSecond: 16384,
		MaxInboundPathBytes:     256 << 10,

		Strikes:            20,
		StrikeWindow:       10 * time.Second,
		MaxPendingOutbound: 16384,
	}
}

// Config configures a Node. Start from DefaultConfig.
type Config struct {
	// NodeID distinguishes authorities of a cluster: Creator ids it assigns
	// are NodeID<<24 | n, and the node writes as NodeID<<24.
	NodeID uint8
	// Store holds the timing rules and store limits, sent to clients in
	// Welcome.
	Store netcode.Config
	// Registry holds the game's functions; nil serves no functions (a plain
	// path-value store).
	Registry *netcode.Registry
	// Auth decides who may connect. Nil accepts everyone.
	Auth Authenticator
	// WriteRule decides which raw writes a session may make. Nil means
	// ClientPrefixRule.
	WriteRule WriteRule
	// FlushEvery batches watch deliveries: values and state changes are
	// sent on the first Tick at least FlushEvery after the previous flush.
	// Zero flushes on every Tick.
	FlushEvery time.Duration
	// InterestEvery is how often spatial watches are brought up to date
	// with the entities' positions (zero: DefaultInterestEvery).
	InterestEvery time.Duration
	// Wire bounds frames and messages in both directions.
	Wire wire.Limits
	// Limits bound each session.
	Limits Limits
	// RunClock, if set, times function runs for the per-function metrics
	// (monotonic nanoseconds). It is only read for metrics, never for
	// decisions, so the node stays deterministic without it.
	RunClock func() int64
	// ResumeKey, at least MinResumeKeyBytes long, signs the resume tokens
	// the node issues in each Welcome, so a client that lost its session
	// can resume it: same creator id, and calls it sends again are
	// answered from their records instead of running twice. Empty disables
	// resuming (every Hello gets a fresh creator). Every node that may
	// receive a client's next Hello must hold the same key to honour its
	// token; a node that does not know the creator gives a fresh one.
	ResumeKey []byte
	// Cluster makes the node one of several authorities sharing ranges
	// of paths (replication, failover); zero: a node on its own.
	Cluster ClusterConfig
	// ResumeWindow is how long after a session ends it can still be
	// resumed (zero: DefaultResumeWindow). The node remembers each ended
	// session's creator this long, at most Limits.MaxSessions of them.
	ResumeWindow time.Duration
	// Persist makes the node record what its shell must make durable
	// (TakePersist): the durable authority sets it. Off, nothing is kept.
	Persist bool
}

// Resuming defaults.
const (
	MinResumeKeyBytes   = 16
	DefaultResumeWindow = 30 * time.Second
)

// DefaultConfig serves the given registry with default timing and limits.
func DefaultConfig(reg *netcode.Registry) Config {
	return Config{
		Store:    netcode.DefaultConfig(),
		Registry: reg,
		Wire:     wire.DefaultLimits(),
		Limits:   DefaultLimits(),

		ResumeWindow: DefaultResumeWindow,
	}
}

// Validate reports the first bad field.
func (c *Config) Validate() error {
	if err := c.Store.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	if err := c.Wire.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	if err := c.Cluster.validate(); err != nil {
		return err
	}
	l := c.Limits
	switch {
	case c.FlushEvery < 0:
		return fmt.Errorf("%w: FlushEvery = %v", ErrBadConfig, c.FlushEvery)
	case c.InterestEvery < 0:
		return fmt.Errorf("%w: InterestEvery = %v", ErrBadConfig, c.InterestEvery)
	case l.MaxAreaEntities < 0:
		return fmt.Errorf("%w: Limits.MaxAreaEntities = %d", ErrBadConfig, l.MaxAreaEntities)
	case len(c.ResumeKey) > 0 && len(c.ResumeKey) < MinResumeKeyBytes:
		return fmt.Errorf("%w: ResumeKey of %d bytes, want at least %d (or none to disable resuming)", ErrBadConfig, len(c.ResumeKey), MinResumeKeyBytes)
	case c.ResumeWindow < 0:
		return fmt.Errorf("%w: ResumeWindow = %v", ErrBadConfig, c.ResumeWindow)
	case l.MaxSessions <= 0 || l.MaxSessions > 1<<24-1:
		return fmt.Errorf("%w: Limits.MaxSessions = %d", ErrBadConfig, l.MaxSessions)
	case l.MaxPendingSessions <= 0:
		return fmt.Errorf("%w: Limits.MaxPendingSessions = %d", ErrBadConfig, l.MaxPendingSessions)
	case l.HelloTimeout <= 0:
		return fmt.Errorf("%w: Limits.HelloTimeout = %v", ErrBadConfig, l.HelloTimeout)
	case l.WatchesPerSession <= 0:
		return fmt.Errorf("%w: Limits.WatchesPerSession = %d", ErrBadConfig, l.WatchesPerSession)
	case l.CallsPerSecond <= 0 || l.WritesPerSecond <= 0 || l.BytesPerSecond <= 0 ||
		l.MessagesPerSecond <= 0 || l.SnapshotValuesPerSecond <= 0:
		return fmt.Errorf("%w: rate limits must be positive", ErrBadConfig)
	case l.FailoverCalls < 0:
		return fmt.Errorf("%w: Limits.FailoverCalls = %d", ErrBadConfig, l.FailoverCalls)
	case l.Strikes <= 0 || l.StrikeWindow <= 0:
		return fmt.Errorf("%w: Limits.Strikes and StrikeWindow must be positive", ErrBadConfig)
	case l.MaxInboundPathBytes <= 0:
		return fmt.Errorf("%w: Limits.MaxInboundPathBytes = %d", ErrBadConfig, l.MaxInboundPathBytes)
	case l.MaxPendingOutbound <= 0:
		return fmt.Errorf("%w: Limits.MaxPendingOutbound = %d", ErrBadConfig, l.MaxPendingOutbound)
	}
	return nil
}

// bucket is a token bucket on the node's clock: rate tokens per second,
// holding at most one second's worth.
type bucket struct {
	tokens float64
	last   int64
}

// take removes n tokens at now, refilling first, and reports whether there
// were enough.
func (b *bucket) take(now int64, rate, n float64) bool {
	if b.avail(now, rate) < n {
		return false
	}
	b.tokens -= n
	return true
}

// avail refills the bucket to now and returns the tokens it holds; spend
// them with take(now, rate, n) for n at most that.
func (b *bucket) avail(now int64, rate float64) float64 {
	if b.last == 0 {
		b.tokens = rate
		b.last = now
	}
	if now > b.last {
		b.tokens += rate * float64(now-b.last) / float64(time.Second)
		if b.tokens > rate {
			b.tokens = rate
		}
		b.last = now
	}
	return b.tokens
}
