//go:build !linux && !darwin

package bench

import "time"

func fileLimit() uint64      { return 0 }
func cpuTime() time.Duration { return 0 }

func selfCPU() time.Duration { return 0 }
