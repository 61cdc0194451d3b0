// Package quality is the demo's quality report: what a match under one lag
// profile measured, per client and for the authority, as JSON (the
// contract read by docs and tools) and as a text table.
//
// A Recorder collects one client's observations during a match; Summarise
// folds the recorders of a match and the authority's CPU time into one
// Profile. Everything here is pure: times are arguments.
package quality

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// ErrBadReport: a report cannot be written or read back (no profiles, a
// figure that is not a finite number, a bad JSON shape).
var ErrBadReport = errors.New("quality: bad report")

// MaxSamples bounds the samples a Recorder keeps per distribution; past
// it, samples replace earlier ones at random positions chosen by a
// deterministic counter (a reservoir), so long matches stay bounded.
const MaxSamples = 1 << 16

// Profile is the quality of one match under one lag profile. The JSON
// names are the report's contract.
type Profile struct {
	// Profile is the lag preset (or "custom").
	Profile string `json:"profile"`
	Clients int    `json:"clients"`
	// Seconds is the measured span of the match.
	Seconds float64 `json:"seconds"`

	// HitsSeen counts shots the shooter's prediction showed as a hit;
	// HitsConfirmedPct is the share of them the authority confirmed (the
	// same target hit).
	HitsSeen         uint64  `json:"hits_seen"`
	HitsConfirmedPct float64 `json:"hits_confirmed_pct"`
	// Why the other seen hits were lost, as shares of HitsSeen: the
	// shooter was already dead at the authority (killed by a shot it had
	// not seen yet), the call came too late or was never answered, the
	// authority's shot hit another target or none.
	HitsLostShooterDeadPct float64 `json:"hits_lost_shooter_dead_pct"`
	HitsLostLatePct        float64 `json:"hits_lost_late_pct"`
	HitsLostOtherPct       float64 `json:"hits_lost_other_pct"`
	// The other hits by what became of them (they sum to
	// HitsLostOtherPct): the call was answered with success but the
	// authority's shot hit another target or none (missed); it was
	// confirmed and a later re-run took the hit back (retracted); it
	// failed for another reason (failed); it had no answer by the end of
	// the match, or was forgotten among more calls in flight than a
	// player tracks (unanswered).
	HitsLostMissedPct     float64 `json:"hits_lost_missed_pct"`
	HitsLostRetractedPct  float64 `json:"hits_lost_retracted_pct"`
	HitsLostFailedPct     float64 `json:"hits_lost_failed_other_pct"`
	HitsLostUnansweredPct float64 `json:"hits_lost_unanswered_pct"`
	// Own-player correction distance in pixels, over every confirmed
	// write of a client's own position (zero when the prediction was
	// exact). CorrectedPct is the share of them that differed at all,
	// CorrectionP99CorrectedPx the p99 over those only.
	CorrectionP50Px          float64 `json:"correction_p50_px"`
	CorrectionP99Px          float64 `json:"correction_p99_px"`
	CorrectionMaxPx          float64 `json:"correction_max_px"`
	CorrectedPct             float64 `json:"corrected_pct"`
	CorrectionP99CorrectedPx float64 `json:"correction_p99_corrected_px"`
	// MispredictionRate is mispredicted calls per confirmed call.
	MispredictionRate float64 `json:"misprediction_rate"`
	// ReRunsPerCall counts the clients' resimulations per call made: a
	// client runs a pending call's prediction again each time a value it
	// read changes in the client's view before the result arrives (a
	// remote player's new motion, say), so every call on a link with a
	// round trip of a few frames is re-run about once or more; it costs
	// the client CPU, not the network. AuthorityReRunsPerCall counts the
	// authority's re-runs per call it ran: a call is run again only when
	// a value written later at an earlier time invalidates what it read
	// (an input that arrived late), which is rare. The two measure
	// different things and are not expected to be alike.
	ReRunsPerCall          float64 `json:"reruns_per_call"`
	AuthorityReRunsPerCall float64 `json:"authority_reruns_per_call"`
	// ConfirmLatencyMinusRTTMs is the median, over confirmed calls, of the
	// time from Call to its result minus the client's RTT at that moment.
	ConfirmLatencyMinusRTTMs float64 `json:"confirm_latency_minus_rtt_ms"`
	RTTMs                    float64 `json:"rtt_ms"`
	Calls                    uint64  `json:"calls"`
	// FailedCalls counts the results of the span that were errors (the
	// clients' Stats.Failed): calls the authority ran and refused under
	// the game's rules, calls it rejected, and calls never answered in
	// time. FailedByReason sorts the failed results of the calls made in
	// the span (their answers awaited after it) by reason, the keys being
	// the Fail* constants; see there for what each means.
	FailedCalls    uint64            `json:"failed_calls"`
	FailedByReason map[string]uint64 `json:"failed_by_reason,omitempty"`
	// Kilobits per second per client, averaged over the clients.
	KbpsIn  float64 `json:"kbps_in"`
	KbpsOut float64 `json:"kbps_out"`
	// AuthorityCPUPctPerClient is the authority process's CPU time (user
	// plus system, every thread) over the match, as a percentage of one
	// core, divided by the clients.
	AuthorityCPUPctPerClient float64 `json:"authority_cpu_pct_per_client"`

	// Cluster holds a cluster match's figures (absent for one
	// authority); its fields appear beside the others in JSON. In a
	// cluster match the authority's CPU is every node's (the killed
	// one's until its kill) and its calls and re-runs are the
	// survivors' (the killed node's counters die with it).
	*Cluster
}

// Cluster is what a cluster match measured about replication and
// failover. The calls are checked by their traces (each call of a bot
// leaves a path, written with the count of its applications, in the
// authorities' state): read from every surviving authority once every
// value is final.
type Cluster struct {
	// Nodes is the authorities started; Killed how many were killed with
	// SIGKILL during the measured span; StalledMs how long node 1 was
	// stopped instead (SIGSTOP, then SIGCONT; 0: none), its bots failing
	// over as from a dead node, and every node checked at the end.
	Nodes     int     `json:"nodes"`
	Killed    int     `json:"killed"`
	StalledMs float64 `json:"stalled_ms,omitempty"`
	// ConfirmedCalls counts the calls whose client's latest result was a
	// success (over the whole match, warm-up included): each is checked.
	ConfirmedCalls uint64 `json:"confirmed_calls"`
	// LostConfirmedCalls counts confirmed calls whose effect (trace) is
	// missing from at least one surviving authority.
	LostConfirmedCalls uint64 `json:"lost_confirmed_calls"`
	// DuplicateCalls counts calls applied more than once on at least one
	// surviving authority.
	DuplicateCalls uint64 `json:"duplicate_calls"`
	// UnconfirmedApplied counts calls the survivors hold whose client
	// last heard a failure or nothing (a result lost with its node, or a
	// client-side timeout, of a call that did run): not an error by
	// itself, shown so that nothing the traces say goes unreported.
	UnconfirmedApplied uint64 `json:"unconfirmed_applied"`
	// StrayTraces counts trace paths no bot made, or with a bad count.
	StrayTraces uint64 `json:"stray_traces"`
	// ReplicaDivergence counts the paths whose valid value differs
	// between the surviving authorities (held by one and not another, or
	// different bytes); ComparedPaths is how many paths were compared.
	ReplicaDivergence uint64 `json:"replica_divergence"`
	ComparedPaths     uint64 `json:"compared_paths"`
	// RejoinedWhenRead counts survivors found rejoining their cluster
	// afresh when their state was read (one that saw too few members
	// alive, a false suspicion under load, replaces itself with a fresh
	// node that catches up from the others): such a survivor's state is
	// a copy of the others', so it says less about divergence.
	RejoinedWhenRead int `json:"rejoined_when_read"`
	// FailoverClients counts the bots connected to the killed node; for
	// each, the time from the kill to its first successful result through
	// another node. FailoverUnconfirmed counts those that had none by the
	// end of the match (counted with the time until then).
	FailoverClients     int     `json:"failover_clients"`
	FailoverUnconfirmed int     `json:"failover_unconfirmed"`
	FailoverMsP50       float64 `json:"failover_ms_p50"`
	FailoverMsP99       float64 `json:"failover_ms_p99"`
	FailoverMsMax       float64 `json:"failover_ms_max"`
	// Where the failover time goes, over the same bots: from the kill to
	// the client's transport noticing the loss (its idle timeout), and to
	// its welcome on another node (redial, resume, and the wait for the
	// takeover there, which waits for membership to declare the node
	// failed).
	FailoverNoticedMsP50 float64 `json:"failover_noticed_ms_p50"`
	FailoverNoticedMsP99 float64 `json:"failover_noticed_ms_p99"`
	FailoverResumedMsP50 float64 `json:"failover_resumed_ms_p50"`
	FailoverResumedMsP99 float64 `json:"failover_resumed_ms_p99"`
	// Logs names the directory of the nodes' data and logs, kept when a
	// check failed (a call lost or applied twice, a path diverged, a
	// stray trace); absent otherwise (removed).
	Logs string `json:"logs,omitempty"`

	// Shards holds a sharded match's figures (absent otherwise); its
	// fields appear beside the others in JSON.
	*Shards
}

// Shards is what a sharded cluster match measured: the arena cut into
// regions, each a range of the shard map, calls relayed from a bot's node
// to its region's owners, a range moved live.
type Shards struct {
	Regions int `json:"regions"`
	// Handoffs counts the range moves and the players' moves from one
	// region to another (PlayerRegionMoves, in the measured span, as the
	// region of a player's consecutive calls).
	Handoffs          uint64 `json:"handoffs"`
	RangeMoves        int    `json:"range_moves"`
	PlayerRegionMoves uint64 `json:"player_region_moves"`
	// RangeMoveMs is how long the move took, from the operator's request
	// to every node holding the final map; RangeMove what it answered.
	RangeMoveMs float64 `json:"range_move_ms"`
	RangeMove   string  `json:"range_move,omitempty"`
	// CrossShardCalls counts the calls an owner ran for a client of
	// another node (relayed to it), over the whole match; ForwardedCalls
	// the calls nodes sent on to an owner (a call forwarded twice, its
	// owner having left the range, counts twice).
	CrossShardCalls uint64 `json:"cross_shard_calls"`
	ForwardedCalls  uint64 `json:"forwarded_calls"`
	// The quality figures of what crosses a region boundary: the shots
	// whose target stood in another region than the shooter (in the
	// shooter's view, when it shot), and the own-motion writes of a
	// player within a second of its moving to another region.
	CrossRegionHitsSeen         uint64  `json:"cross_region_hits_seen"`
	CrossRegionHitsConfirmedPct float64 `json:"cross_region_hits_confirmed_pct"`
	CrossRegionMotionCalls      uint64  `json:"cross_region_motion_calls"`
	CrossRegionCorrectionP99Px  float64 `json:"cross_region_correction_p99_px"`
	// The latency minus RTT of the span's confirmed calls that ran on
	// the client's own node (LocalCalls) and of those relayed to another
	// (RelayedCalls), by the map the match set (calls made while the
	// range moved are in neither).
	LocalCalls                  uint64  `json:"local_calls"`
	RelayedCalls                uint64  `json:"relayed_calls"`
	LocalConfirmMinusRTTMsP50   float64 `json:"local_confirm_minus_rtt_ms_p50"`
	LocalConfirmMinusRTTMsP99   float64 `json:"local_confirm_minus_rtt_ms_p99"`
	RelayedConfirmMinusRTTMsP50 float64 `json:"relayed_confirm_minus_rtt_ms_p50"`
	RelayedConfirmMinusRTTMsP99 float64 `json:"relayed_confirm_minus_rtt_ms_p99"`
}

// Report is the whole quality report.
type Report struct {
	// Machine says where it was measured (GOOS/GOARCH, CPU count).
	Machine string `json:"machine"`
	Command string `json:"command"`
	Seed    uint64 `json:"seed"`
	// AuthorityProcs is the GOMAXPROCS the authority process ran with
	// (0: Go's default, every core).
	AuthorityProcs int       `json:"authority_procs"`
	Profiles       []Profile `json:"profiles"`
}

// WriteJSON writes r, indented. It refuses a report without profiles or
// with a figure that is NaN or infinite (JSON has no such numbers).
func (r *Report) WriteJSON(w io.Writer) error {
	if len(r.Profiles) == 0 {
		return fmt.Errorf("%w: no profiles", ErrBadReport)
	}
	for _, p := range r.Profiles {
		for name, v := range p.figures() {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("%w: %s %s = %v", ErrBadReport, p.Profile, name, v)
			}
		}
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadReport, err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// ReadJSON reads a report written by WriteJSON, refusing unknown fields.
func ReadJSON(rd io.Reader) (*Report, error) {
	dec := json.NewDecoder(rd)
	dec.DisallowUnknownFields()
	var r Report
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadReport, err)
	}
	if len(r.Profiles) == 0 {
		return nil, fmt.Errorf("%w: no profiles", ErrBadReport)
	}
	return &r, nil
}

func (p *Profile) figures() map[string]float64 {
	f := map[string]float64{
		"seconds": p.Seconds, "hits_confirmed_pct": p.HitsConfirmedPct,
		"hits_lost_shooter_dead_pct": p.HitsLostShooterDeadPct, "hits_lost_late_pct": p.HitsLostLatePct,
		"hits_lost_other_pct": p.HitsLostOtherPct, "hits_lost_missed_pct": p.HitsLostMissedPct,
		"hits_lost_retracted_pct": p.HitsLostRetractedPct, "hits_lost_failed_other_pct": p.HitsLostFailedPct,
		"hits_lost_unanswered_pct": p.HitsLostUnansweredPct,
		"correction_p50_px":        p.CorrectionP50Px, "correction_p99_px": p.CorrectionP99Px,
		"correction_max_px": p.CorrectionMaxPx, "corrected_pct": p.CorrectedPct,
		"correction_p99_corrected_px": p.CorrectionP99CorrectedPx,
		"misprediction_rate":          p.MispredictionRate, "reruns_per_call": p.ReRunsPerCall,
		"authority_reruns_per_call":    p.AuthorityReRunsPerCall,
		"confirm_latency_minus_rtt_ms": p.ConfirmLatencyMinusRTTMs, "rtt_ms": p.RTTMs,
		"kbps_in": p.KbpsIn, "kbps_out": p.KbpsOut,
		"authority_cpu_pct_per_client": p.AuthorityCPUPctPerClient,
	}
	if c := p.Cluster; c != nil {
		f["failover_ms_p50"], f["failover_ms_p99"], f["failover_ms_max"] = c.FailoverMsP50, c.FailoverMsP99, c.FailoverMsMax
		f["failover_noticed_ms_p50"], f["failover_noticed_ms_p99"] = c.FailoverNoticedMsP50, c.FailoverNoticedMsP99
		f["failover_resumed_ms_p50"], f["failover_resumed_ms_p99"] = c.FailoverResumedMsP50, c.FailoverResumedMsP99
		if sh := c.Shards; sh != nil {
			f["range_move_ms"], f["cross_region_hits_confirmed_pct"], f["cross_region_correction_p99_px"] = sh.RangeMoveMs, sh.CrossRegionHitsConfirmedPct, sh.CrossRegionCorrectionP99Px
			f["local_confirm_minus_rtt_ms_p50"], f["local_confirm_minus_rtt_ms_p99"] = sh.LocalConfirmMinusRTTMsP50, sh.LocalConfirmMinusRTTMsP99
			f["relayed_confirm_minus_rtt_ms_p50"], f["relayed_confirm_minus_rtt_ms_p99"] = sh.RelayedConfirmMinusRTTMsP50, sh.RelayedConfirmMinusRTTMsP99
		}
	}
	return f
}

// WriteTable prints the report as an aligned text table, one row per
// profile.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := []string{"profile", "clients", "rtt ms", "hits ok %", "corr p50 px", "corr p99 px", "corrected %",
		"mispred/call", "client resims/call", "auth reruns/call", "failed %", "confirm-rtt ms", "kbps in", "kbps out",
		"auth cpu %/client", ""}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, p := range r.Profiles {
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.1f\t%.2f\t%.2f\t%.1f\t%.3f\t%.3f\t%.3f\t%.1f\t%.1f\t%.1f\t%.1f\t%.3f\t\n",
			p.Profile, p.Clients, p.RTTMs, p.HitsConfirmedPct, p.CorrectionP50Px, p.CorrectionP99Px, p.CorrectedPct,
			p.MispredictionRate, p.ReRunsPerCall, p.AuthorityReRunsPerCall, ratio(p.FailedCalls, p.Calls)*100,
			p.ConfirmLatencyMinusRTTMs, p.KbpsIn, p.KbpsOut, p.AuthorityCPUPctPerClient)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range r.Profiles {
		if _, err := fmt.Fprintf(w, "%s: %d of %d calls failed%s\n", p.Profile, p.FailedCalls, p.Calls, reasons(p.FailedByReason)); err != nil {
			return err
		}
		if c := p.Cluster; c != nil {
			fault := fmt.Sprintf("%d killed", c.Killed)
			if c.StalledMs > 0 {
				fault = fmt.Sprintf("1 stopped for %.0f ms", c.StalledMs)
			}
			if _, err := fmt.Fprintf(w, "%s: cluster of %d, %s: %d confirmed calls checked on every survivor, %d lost, %d applied twice, %d applied unconfirmed;"+
				" %d of %d paths diverge between the survivors; failover of %d clients p50 %.0f ms, p99 %.0f ms, max %.0f ms (%d without a confirmed call after)\n",
				p.Profile, c.Nodes, fault, c.ConfirmedCalls, c.LostConfirmedCalls, c.DuplicateCalls, c.UnconfirmedApplied,
				c.ReplicaDivergence, c.ComparedPaths, c.FailoverClients, c.FailoverMsP50, c.FailoverMsP99, c.FailoverMsMax, c.FailoverUnconfirmed); err != nil {
				return err
			}
			if sh := c.Shards; sh != nil {
				if _, err := fmt.Fprintf(w, "%s: %d regions: %d handoffs (%d range moves in %.0f ms, %d players moving between regions), %d cross-shard calls (%d forwarded);"+
					" across a region boundary: %d hits seen, %.1f %% confirmed; own-correction p99 %.2f px over %d writes;"+
					" confirm-rtt p50/p99 of %d calls run on the client's node %.1f/%.1f ms, of %d relayed %.1f/%.1f ms\n",
					p.Profile, sh.Regions, sh.Handoffs, sh.RangeMoves, sh.RangeMoveMs, sh.PlayerRegionMoves, sh.CrossShardCalls, sh.ForwardedCalls,
					sh.CrossRegionHitsSeen, sh.CrossRegionHitsConfirmedPct, sh.CrossRegionCorrectionP99Px, sh.CrossRegionMotionCalls,
					sh.LocalCalls, sh.LocalConfirmMinusRTTMsP50, sh.LocalConfirmMinusRTTMsP99, sh.RelayedCalls, sh.RelayedConfirmMinusRTTMsP50, sh.RelayedConfirmMinusRTTMsP99); err != nil {
					return err
				}
			}
			if c.Logs != "" {
				if _, err := fmt.Fprintf(w, "%s: a check failed: the nodes' data and logs are kept in %s\n", p.Profile, c.Logs); err != nil {
					return err
				}
			}
			if c.RejoinedWhenRead > 0 || c.StrayTraces > 0 {
				if _, err := fmt.Fprintf(w, "%s: %d survivors were rejoining their cluster when read, %d stray traces\n", p.Profile, c.RejoinedWhenRead, c.StrayTraces); err != nil {
					return err
				}
			}
		}
	}
	_, err := fmt.Fprintln(w, "client resims: a pending call predicted again when a value it read changed before its result;"+
		" auth reruns: a call run again when a late input invalidated its reads")
	return err
}

// reasons formats failed results by reason, most frequent first.
func reasons(m map[string]uint64) string {
	if len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			return cmp.Compare(m[b], m[a])
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return " (answers of the span's calls by reason: " + strings.Join(parts, ", ") + ")"
}

// Samples is a bounded sample of a distribution (see MaxSamples).
type Samples struct {
	v    []float64
	seen uint64
}

// Add records x.
func (s *Samples) Add(x float64) {
	s.seen++
	if len(s.v) < MaxSamples {
		s.v = append(s.v, x)
		return
	}
	// Deterministic reservoir: a multiplicative hash of the count picks
	// the slot to replace with probability MaxSamples/seen.
	h := s.seen * 0x9e3779b97f4a7c15
	if h%s.seen < MaxSamples {
		s.v[h%MaxSamples] = x
	}
}

// Len returns how many samples were added.
func (s *Samples) Len() uint64 { return s.seen }

// Values returns the kept samples (aliasing s).
func (s *Samples) Values() []float64 { return s.v }

// Merge adds o's kept samples to s.
func (s *Samples) Merge(o *Samples) {
	for _, x := range o.v {
		s.Add(x)
	}
}

// Quantile returns the q-quantile (0..1) of xs by the nearest-rank
// method, 0 for no samples. xs is not modified.
func Quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// Recorder collects one client's observations during a match. It is
// owned by the goroutine that runs the client.
type Recorder struct {
	HitsSeen      uint64
	HitsConfirmed uint64
	// Seen hits the authority did not confirm, by reason (Profile's
	// HitsLost*Pct); those never answered are the rest.
	HitsShooterDead, HitsLate                  uint64
	HitsMissed, HitsRetracted, HitsFailedOther uint64
	// Correction holds the own-position correction distance (px) of each
	// confirmed own-position write; Corrected those above zero.
	Correction Samples
	Corrected  Samples
	// ConfirmMinusRTT holds, per confirmed call, latency minus RTT (ms).
	ConfirmMinusRTT Samples
	// Failed counts failed results by reason (the Fail* constants).
	Failed map[string]uint64
}

// Fail records a failed result for reason.
func (r *Recorder) Fail(reason string) {
	if r.Failed == nil {
		r.Failed = make(map[string]uint64)
	}
	r.Failed[reason]++
}

// Reasons a call fails, the keys of Profile.FailedByReason.
const (
	// FailDead: the caller was dead at the authority (game.ErrDead). Its
	// client still showed it alive: the shot that killed it had not
	// reached the client when it moved, aimed or used gravity, so the
	// prediction succeeded and the authority refused. The most common
	// failure, and expected: it grows with the round trip.
	FailDead = "dead"
	// FailCooldown: the shot, gravity or respawn was not ready at the
	// authority (game.ErrCooldown).
	FailCooldown = "cooldown"
	// FailAlive: a respawn of a player alive at the authority
	// (game.ErrAlive).
	FailAlive = "alive"
	// FailNotJoined: a call before the caller's join was stored
	// (game.ErrNotJoined).
	FailNotJoined = "not_joined"
	// FailLate: the call's write time was older than the authority's
	// change window when it arrived, or it was not answered within the
	// client's call timeout (netcode.ErrCallTimeout).
	FailLate = "late"
	// FailOther: anything else (a limit, a bad argument); the HUD shows
	// the message.
	FailOther = "other"
)

// Counters are a client's totals at the end of a match (from its Stats).
type Counters struct {
	Calls, Confirmed, Failed, Mispredictions, Reruns uint64
	BytesIn, BytesOut                                uint64
	RTT                                              time.Duration
}

// Authority is what the authority measured over the match.
type Authority struct {
	CPU    time.Duration // process CPU time spent during the match
	Calls  uint64        // calls run
	Reruns uint64        // calls re-run
}

// Summarise folds one match into a Profile: recs[i] and ctr[i] belong to
// client i, span is the match's measured duration.
func Summarise(profile string, span time.Duration, recs []*Recorder, ctr []Counters, auth Authority) (Profile, error) {
	if len(recs) == 0 || len(recs) != len(ctr) {
		return Profile{}, fmt.Errorf("%w: %d recorders, %d counters", ErrBadReport, len(recs), len(ctr))
	}
	if span <= 0 {
		return Profile{}, fmt.Errorf("%w: span %v", ErrBadReport, span)
	}
	p := Profile{Profile: profile, Clients: len(recs), Seconds: span.Seconds()}
	var corr, corrected, lat Samples
	var seen, ok, dead, late, missed, retracted, failed uint64
	var sum Counters
	var rtt time.Duration
	for i, r := range recs {
		seen += r.HitsSeen
		ok += r.HitsConfirmed
		dead += r.HitsShooterDead
		late += r.HitsLate
		missed += r.HitsMissed
		retracted += r.HitsRetracted
		failed += r.HitsFailedOther
		corr.Merge(&r.Correction)
		corrected.Merge(&r.Corrected)
		lat.Merge(&r.ConfirmMinusRTT)
		for reason, n := range r.Failed {
			if p.FailedByReason == nil {
				p.FailedByReason = make(map[string]uint64)
			}
			p.FailedByReason[reason] += n
		}
		c := ctr[i]
		sum.Calls += c.Calls
		sum.Confirmed += c.Confirmed
		sum.Failed += c.Failed
		sum.Mispredictions += c.Mispredictions
		sum.Reruns += c.Reruns
		sum.BytesIn += c.BytesIn
		sum.BytesOut += c.BytesOut
		rtt += c.RTT
	}
	n := float64(len(recs))
	p.HitsSeen = seen
	p.HitsConfirmedPct = ratio(ok, seen) * 100
	p.HitsLostShooterDeadPct = ratio(dead, seen) * 100
	p.HitsLostLatePct = ratio(late, seen) * 100
	if other := int64(seen) - int64(ok+dead+late); other > 0 {
		p.HitsLostOtherPct = ratio(uint64(other), seen) * 100
		p.HitsLostMissedPct = ratio(missed, seen) * 100
		p.HitsLostRetractedPct = ratio(retracted, seen) * 100
		p.HitsLostFailedPct = ratio(failed, seen) * 100
		if rest := other - int64(missed+retracted+failed); rest > 0 {
			p.HitsLostUnansweredPct = ratio(uint64(rest), seen) * 100
		}
	}
	p.CorrectionP50Px = Quantile(corr.Values(), 0.50)
	p.CorrectionP99Px = Quantile(corr.Values(), 0.99)
	p.CorrectionMaxPx = Quantile(corr.Values(), 1)
	p.CorrectedPct = ratio(corrected.Len(), corr.Len()) * 100
	p.CorrectionP99CorrectedPx = Quantile(corrected.Values(), 0.99)
	p.MispredictionRate = ratio(sum.Mispredictions, sum.Confirmed)
	p.ReRunsPerCall = ratio(sum.Reruns, sum.Calls)
	p.AuthorityReRunsPerCall = ratio(auth.Reruns, auth.Calls)
	p.ConfirmLatencyMinusRTTMs = Quantile(lat.Values(), 0.5)
	p.RTTMs = float64(rtt) / n / float64(time.Millisecond)
	p.Calls = sum.Calls
	p.FailedCalls = sum.Failed
	kbps := func(bytes uint64) float64 { return float64(bytes) * 8 / 1000 / span.Seconds() / n }
	p.KbpsIn = kbps(sum.BytesIn)
	p.KbpsOut = kbps(sum.BytesOut)
	p.AuthorityCPUPctPerClient = float64(auth.CPU) / float64(span) * 100 / n
	return p, nil
}

// ratio is a/b, 0 when b is 0.
func ratio(a, b uint64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}
