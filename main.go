// Command loginhub is a real-time login hub for WeChat mini-programs: scan a
// QR code on the desktop, confirm on the phone, and the desktop is logged in
// over WebSocket within milliseconds. See README.md.
package main

import (
	"context"
	"fmt"
	"os"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "loginhub:", err)
		os.Exit(1)
	}
}
