package netcode

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Path limits from the data model: a path has at most MaxPathSegments
// segments and at most MaxPathLen bytes.
const (
	MaxPathSegments = 32
	MaxPathLen      = 1024 // bytes
)

// ValidatePath reports whether p is a well-formed path: valid UTF-8,
// segments separated by '/', no leading or trailing '/', no empty segment,
// at most MaxPathSegments segments and MaxPathLen bytes. The error wraps
// ErrInvalidPath and names the broken rule.
//
// Paths travel in FlatBuffers strings, which are UTF-8 by definition, so
// a path that is not UTF-8 is refused here, and the wire codec refuses one
// in both directions as well.
func ValidatePath(p string) error {
	if p == "" {
		return pathError(p, "empty path")
	}
	if len(p) > MaxPathLen {
		return pathError(p, fmt.Sprintf("longer than %d bytes", MaxPathLen))
	}
	if p[0] == '/' {
		return pathError(p, "leading '/'")
	}
	if p[len(p)-1] == '/' {
		return pathError(p, "trailing '/' (a prefix, not a path)")
	}
	if !utf8.ValidString(p) {
		return pathError(p, "not valid UTF-8")
	}
	return checkSegments(p, p)
}

// ValidatePrefix reports whether prefix is a well-formed prefix: a valid path
// followed by '/' (such as "players/"), or the empty prefix "" that matches
// every path. Like a path, it must be valid UTF-8.
func ValidatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if prefix[len(prefix)-1] != '/' {
		return pathError(prefix, "prefix must end with '/'")
	}
	if len(prefix) > MaxPathLen {
		return pathError(prefix, fmt.Sprintf("longer than %d bytes", MaxPathLen))
	}
	body := prefix[:len(prefix)-1]
	if body == "" || body[0] == '/' {
		return pathError(prefix, "leading '/'")
	}
	if body[len(body)-1] == '/' {
		return pathError(prefix, "empty segment")
	}
	if !utf8.ValidString(body) {
		return pathError(prefix, "not valid UTF-8")
	}
	return checkSegments(prefix, body)
}

// checkSegments checks the segment rules on body and reports errors about
// the original string orig.
func checkSegments(orig, body string) error {
	segments := 1
	prev := -1
	for i := 0; i < len(body); i++ {
		if body[i] != '/' {
			continue
		}
		if i == prev+1 {
			return pathError(orig, "empty segment")
		}
		prev = i
		segments++
	}
	if segments > MaxPathSegments {
		return pathError(orig, fmt.Sprintf("more than %d segments", MaxPathSegments))
	}
	return nil
}

func pathError(p string, rule string) error {
	if len(p) > 64 {
		p = p[:64] + "…" // %q below escapes a rune this cuts
	}
	return fmt.Errorf("%w %q: %s", ErrInvalidPath, p, rule)
}

// HasPrefix reports whether path p lies under prefix. A prefix ending in '/'
// matches every path below it; a prefix without a trailing '/' matches only
// the path equal to it, so a watch on "players/42" does not see
// "players/420". The empty prefix matches everything.
func HasPrefix(p, prefix string) bool {
	if prefix == "" {
		return true
	}
	if prefix[len(prefix)-1] == '/' {
		return strings.HasPrefix(p, prefix)
	}
	return p == prefix
}
