// Command shooter is Rewind's demo: a top-down shooter that shows
// prediction, lag compensation and correction under a simulated link.
package main

import (
	"errors"
	"fmt"
	"os"
)

func main() {
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		if errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		os.Exit(1)
	}
	_ = cfg
	fmt.Fprintln(os.Stderr, "shooter: not built yet")
	os.Exit(1)
}
