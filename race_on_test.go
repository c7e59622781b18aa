//go:build race

package main

// raceEnabled says the tests run with -race, so the hub binaries they start
// are built with it too.
const raceEnabled = true
