// Package testclient is a minimal Rewind client for tests of the authority
// over a real transport: it dials, says Hello, waits for Welcome, sends
// calls, watches, writes and time-sync requests, and decodes what comes
// back into whole messages. It predicts nothing and validates nothing; it
// is the smallest thing that speaks the protocol.
//
// It also holds the counter registry (one function, "add") that smoke
// tests and the authority binary's -functions counter serve.
//
// A Client is not safe for concurrent use: one goroutine sends and reads.
package testclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/rewindnet/rewind/netcode/transport"
	"github.com/rewindnet/rewind/netcode/wire"
)

// Errors of the test client.
var (
	// ErrRefused: the authority answered Hello with an Error.
	ErrRefused = errors.New("testclient: refused")
	// ErrProtocol: the authority sent something the client cannot decode.
	ErrProtocol = errors.New("testclient: protocol error")
)

// maxInbox bounds the decoded messages waiting for Next: a frame holds at
// most wire.Limits.MaxMessages messages, so one frame's worth is the most
// that can be waiting.
const maxInbox = 1 << 16

// Config configures Dial.
type Config struct {
	// Transport must agree with the authority's Secret and FEC settings.
	Transport transport.Config
	// Wire bounds frames both ways; zero fields take wire's defaults.
	Wire wire.Limits
	// Token is sent in Hello (nil when the authority accepts everyone).
	Token []byte
	// Resume, if set, is the resume token of an earlier session's
	// Welcome: the authority gives this session the same creator.
	Resume []byte
	// Seq is the sequence number of the last call an earlier session of
	// the same creator sent (with Resume): this one's calls go on from
	// it, since a call id the authority has a record of is answered from
	// that record.
	Seq uint64
	// Conn, if set, is dialled over instead of a new UDP socket (a
	// lagsim.Conn, for instance); the caller closes it after Close.
	Conn net.PacketConn
}

// Client is one connection to an authority.
type Client struct {
	sess *transport.Session
	enc  *wire.Encoder
	dec  *wire.Decoder
	buf  []byte

	inbox []*wire.Message

	welcome   wire.Welcome
	welcomeAt time.Time // local time Welcome was read
	seq       uint64
}

// Dial connects to the authority at addr and completes Hello/Welcome
// within ctx.
func Dial(ctx context.Context, addr string, cfg Config) (*Client, error) {
	enc, err := wire.NewEncoder(cfg.Wire)
	if err != nil {
		return nil, err
	}
	dec, err := wire.NewDecoder(cfg.Wire)
	if err != nil {
		return nil, err
	}
	var sess *transport.Session
	if cfg.Conn != nil {
		raddr, rerr := net.ResolveUDPAddr("udp", addr)
		if rerr != nil {
			return nil, fmt.Errorf("testclient: %w", rerr)
		}
		sess, err = transport.DialConn(ctx, cfg.Conn, raddr, cfg.Transport)
	} else {
		sess, err = transport.Dial(ctx, addr, cfg.Transport)
	}
	if err != nil {
		return nil, fmt.Errorf("testclient: %w", err)
	}
	c := &Client{sess: sess, enc: enc, dec: dec, seq: cfg.Seq}
	if err := c.Send(&wire.Message{Kind: wire.KindHello, Hello: wire.Hello{Version: wire.ProtocolVersion, Token: cfg.Token, Resume: cfg.Resume}}); err != nil {
		sess.Close("hello failed")
		return nil, err
	}
	for {
		m, err := c.Next(ctx)
		if err != nil {
			sess.Close("no welcome")
			return nil, err
		}
		switch m.Kind {
		case wire.KindWelcome:
			c.welcome, c.welcomeAt = m.Welcome, time.Now()
			return c, nil
		case wire.KindError:
			sess.Close("refused")
			return nil, fmt.Errorf("%w: code %d: %s", ErrRefused, m.Error.Code, m.Error.Text)
		}
	}
}

// Welcome returns the authority's Welcome.
func (c *Client) Welcome() wire.Welcome { return c.welcome }

// Creator returns the id the authority assigned to this connection.
func (c *Client) Creator() uint32 { return c.welcome.Creator }

// ServerNow estimates the authority's clock: its time in Welcome plus the
// local time elapsed since. It lags the authority by the one-way delay of
// the Welcome, which is all a test needs to stamp calls inside the change
// window.
func (c *Client) ServerNow() int64 {
	return c.welcome.ServerTime + int64(time.Since(c.welcomeAt))
}

// Seq returns the sequence number of the last call sent.
func (c *Client) Seq() uint64 { return c.seq }

// Session returns the transport session (for its counters).
func (c *Client) Session() *transport.Session { return c.sess }

// Frame encodes msgs into one frame of the client's direction without
// sending it (a test may alter it, then SendFrame it). Every frame it
// returns must be sent, in order: it may define paths.
func (c *Client) Frame(msgs ...*wire.Message) ([]byte, error) {
	f := c.enc.BeginFrame(nil)
	for _, m := range msgs {
		var err error
		if f, err = c.enc.Append(f, m); err != nil {
			return nil, fmt.Errorf("testclient: encode %v: %w", m.Kind, err)
		}
	}
	return f, nil
}

// SendFrame queues a frame as it is.
func (c *Client) SendFrame(f []byte) error {
	if err := c.sess.Send(f, transport.Data); err != nil {
		return fmt.Errorf("testclient: %w", err)
	}
	return nil
}

// Send encodes msgs into one frame and queues it.
func (c *Client) Send(msgs ...*wire.Message) error {
	c.buf = c.enc.BeginFrame(c.buf[:0])
	for _, m := range msgs {
		var err error
		if c.buf, err = c.enc.Append(c.buf, m); err != nil {
			return fmt.Errorf("testclient: encode %v: %w", m.Kind, err)
		}
	}
	if err := c.sess.Send(c.buf, transport.Data); err != nil {
		return fmt.Errorf("testclient: %w", err)
	}
	return nil
}

// Call sends a call of name with args at write time w (synced ns) and
// returns its id. Sequence numbers start at 1.
func (c *Client) Call(name string, args []byte, w int64, viewDelay time.Duration) (wire.CallID, error) {
	c.seq++
	id := wire.CallID{Creator: c.welcome.Creator, Seq: c.seq}
	return id, c.Send(&wire.Message{Kind: wire.KindCall, Call: wire.Call{
		ID: id, Name: name, Args: args, Time: wire.Time{Nanos: w, Creator: c.welcome.Creator}, ViewDelay: viewDelay}})
}

// Watch subscribes to the latest values under prefixes.
func (c *Client) Watch(prefixes ...string) error {
	return c.Send(&wire.Message{Kind: wire.KindWatch, Watch: wire.Watch{Prefixes: prefixes, Mode: wire.WatchLatest}})
}

// TimeSync sends a time-sync request stamped clientSend.
func (c *Client) TimeSync(clientSend int64) error {
	return c.Send(&wire.Message{Kind: wire.KindTimeSyncRequest, TimeSyncRequest: wire.TimeSyncRequest{ClientSend: clientSend}})
}

// Next returns the next message from the authority, reading a frame when
// none is waiting. It fails with ctx's error, with the transport's
// CloseError once the session closed and every frame was read, or with
// ErrProtocol for an undecodable frame. The message is the caller's: no
// later call reuses it.
func (c *Client) Next(ctx context.Context) (*wire.Message, error) {
	for len(c.inbox) == 0 {
		f, err := c.sess.Recv(ctx)
		if err != nil {
			return nil, err
		}
		if err := c.dec.Start(f); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrProtocol, err)
		}
		for {
			// A fresh Message per message: its slices are not reused, and
			// its byte fields alias f, which nothing reuses either.
			m := new(wire.Message)
			err := c.dec.Next(m)
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("%w: %w", ErrProtocol, err)
			}
			if len(c.inbox) >= maxInbox {
				return nil, fmt.Errorf("%w: more than %d messages waiting", ErrProtocol, maxInbox)
			}
			c.inbox = append(c.inbox, m)
		}
	}
	m := c.inbox[0]
	c.inbox[0] = nil
	c.inbox = c.inbox[1:]
	return m, nil
}

// Close closes the session with reason.
func (c *Client) Close(reason string) error { return c.sess.Close(reason) }
