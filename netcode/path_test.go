package netcode

import (
	"errors"
	"strings"
	"testing"
)

// TestPathsAreUTF8: a path or prefix is valid UTF-8, or it is refused
// naming the rule; a valid multi-byte path is accepted.
func TestPathsAreUTF8(t *testing.T) {
	for _, p := range []string{"counters/bin\xff\xfe", "\xc3", "a/\xed\xa0\x80/b"} {
		if err := ValidatePath(p); !errors.Is(err, ErrInvalidPath) || !strings.Contains(err.Error(), "UTF-8") {
			t.Errorf("ValidatePath(%q) = %v, want ErrInvalidPath naming UTF-8", p, err)
		}
		if err := ValidatePrefix(p + "/"); !errors.Is(err, ErrInvalidPath) || !strings.Contains(err.Error(), "UTF-8") {
			t.Errorf("ValidatePrefix(%q) = %v, want ErrInvalidPath naming UTF-8", p+"/", err)
		}
	}
	for _, p := range []string{"joueurs/éléonore/pos", "世界/1", "a/😀"} {
		if err := ValidatePath(p); err != nil {
			t.Errorf("ValidatePath(%q) = %v", p, err)
		}
		if err := ValidatePrefix(p + "/"); err != nil {
			t.Errorf("ValidatePrefix(%q) = %v", p+"/", err)
		}
	}
}

// TestFunctionNamesAreUTF8: a function name travels in every call as a
// FlatBuffers string, so a registry refuses one that is not UTF-8.
func TestFunctionNamesAreUTF8(t *testing.T) {
	r := NewRegistry()
	fn := func(*Tx, []byte) error { return nil }
	if err := r.Register("tir\xff", fn, FuncOptions{}); err == nil || !strings.Contains(err.Error(), "UTF-8") {
		t.Fatalf("non-UTF-8 name: %v", err)
	}
	if err := r.Register("tir-à-l'arc", fn, FuncOptions{}); err != nil {
		t.Fatalf("UTF-8 name: %v", err)
	}
}
