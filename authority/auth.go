package authority

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// Authenticator decides whether a Hello's token may connect, and as whom.
// It is called on the node's goroutine with the node's clock.
type Authenticator interface {
	// Authenticate returns the player id the token proves, or an error
	// (wrapping ErrAuth) to refuse the session.
	Authenticate(now int64, token []byte) (player string, err error)
}

// HMACAuth accepts tokens made by IssueToken with the same secret: a player
// id and an expiry signed with HMAC-SHA256. A token is accepted once (the
// nonce inside is remembered until the token expires), so a captured token
// cannot be replayed; expired tokens are refused.
type HMACAuth struct {
	secret  []byte
	seen    map[[16]byte]int64 // nonce → expiry
	maxSeen int
}

// NewHMACAuth returns an authenticator for secret. maxSeen bounds the
// remembered nonces (tokens unexpired at once); beyond it new tokens are
// refused until old ones expire.
func NewHMACAuth(secret []byte, maxSeen int) (*HMACAuth, error) {
	if len(secret) < 16 {
		return nil, fmt.Errorf("%w: secret shorter than 16 bytes", ErrBadConfig)
	}
	if maxSeen <= 0 {
		maxSeen = 1 << 16
	}
	return &HMACAuth{secret: append([]byte(nil), secret...), seen: make(map[[16]byte]int64), maxSeen: maxSeen}, nil
}

const maxPlayerLen = 128

// IssueToken makes a token for player valid until expiry (synced
// nanoseconds). nonce must be unique per token (16 random bytes).
func IssueToken(secret []byte, player string, expiry int64, nonce [16]byte) ([]byte, error) {
	if len(player) == 0 || len(player) > maxPlayerLen {
		return nil, fmt.Errorf("%w: player id must be 1 to %d bytes", ErrAuth, maxPlayerLen)
	}
	tok := make([]byte, 0, 1+len(player)+8+16+sha256.Size)
	tok = append(tok, byte(len(player)))
	tok = append(tok, player...)
	tok = binary.BigEndian.AppendUint64(tok, uint64(expiry))
	tok = append(tok, nonce[:]...)
	mac := hmac.New(sha256.New, secret)
	mac.Write(tok)
	return mac.Sum(tok), nil
}

// Authenticate checks signature, expiry and replay.
func (a *HMACAuth) Authenticate(now int64, token []byte) (string, error) {
	if len(token) < 1+1+8+16+sha256.Size {
		return "", fmt.Errorf("%w: token too short", ErrAuth)
	}
	n := int(token[0])
	if n == 0 || n > maxPlayerLen || len(token) != 1+n+8+16+sha256.Size {
		return "", fmt.Errorf("%w: malformed token", ErrAuth)
	}
	body, sig := token[:len(token)-sha256.Size], token[len(token)-sha256.Size:]
	mac := hmac.New(sha256.New, a.secret)
	mac.Write(body)
	if !hmac.Equal(sig, mac.Sum(nil)) {
		return "", fmt.Errorf("%w: bad signature", ErrAuth)
	}
	player := string(body[1 : 1+n])
	expiry := int64(binary.BigEndian.Uint64(body[1+n:]))
	var nonce [16]byte
	copy(nonce[:], body[1+n+8:])
	if now >= expiry {
		return "", fmt.Errorf("%w: token expired", ErrAuth)
	}
	if _, replay := a.seen[nonce]; replay {
		return "", fmt.Errorf("%w: token already used", ErrAuth)
	}
	if len(a.seen) >= a.maxSeen {
		for k, exp := range a.seen {
			if exp <= now {
				delete(a.seen, k)
			}
		}
		if len(a.seen) >= a.maxSeen {
			return "", fmt.Errorf("%w: too many live tokens", ErrAuth)
		}
	}
	a.seen[nonce] = expiry
	return player, nil
}

// WriteRule decides whether the session with Creator id creator (and
// authenticated player, "" without authentication) may write path raw. It
// returns nil to allow, or an error naming the rule.
type WriteRule func(creator uint32, player string, path string) error

// ClientPrefixRule, the default, lets a client write only under
// clients/<its Creator id>/.
func ClientPrefixRule(creator uint32, _ string, path string) error {
	prefix := fmt.Sprintf("clients/%d/", creator)
	if len(path) > len(prefix) && path[:len(prefix)] == prefix {
		return nil
	}
	return fmt.Errorf("%w: %s is outside %s (rule: clients write only under clients/<creator>/)", ErrPermission, path, prefix)
}
