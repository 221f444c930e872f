// Command piazza runs Piazza's services: all of them in one process by
// default, or the ones named by -target, each talking to the others only
// through NATS.
package main

import (
	"context"
	"fmt"
	"os"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "piazza:", err)
		os.Exit(1)
	}
}
