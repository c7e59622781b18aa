//go:build !unix

package main

// openFileLimit is unknown here: no automatic socket cap.
func openFileLimit() int { return 0 }
