package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// parsePrometheus reads the Prometheus text exposition format into a map
// from series (the metric name, plus its labels exactly as written:
// `go_gc_duration_seconds{quantile="0.5"}`) to value. Comments, HELP and
// TYPE lines are skipped; timestamps are ignored.
func parsePrometheus(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		series, rest, err := splitSeries(line)
		if err != nil {
			return nil, fmt.Errorf("metrics line %d: %w", n, err)
		}
		fields := strings.Fields(rest)
		if len(fields) < 1 || len(fields) > 2 {
			return nil, fmt.Errorf("metrics line %d: want a value and an optional timestamp after %s", n, series)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics line %d: value %q: %w", n, fields[0], err)
		}
		out[series] = v
	}
	return out, sc.Err()
}

// splitSeries splits `name{labels} value` after the series. Label values
// are quoted and may hold spaces, braces and escaped quotes.
func splitSeries(line string) (series, rest string, err error) {
	i := strings.IndexAny(line, "{ \t")
	if i <= 0 {
		return "", "", errors.New("no value")
	}
	if line[i] != '{' {
		return line[:i], line[i:], nil
	}
	inQuote := false
	for j := i + 1; j < len(line); j++ {
		switch c := line[j]; {
		case inQuote && c == '\\':
			j++
		case c == '"':
			inQuote = !inQuote
		case !inQuote && c == '}':
			return line[:j+1], line[j+1:], nil
		}
	}
	return "", "", errors.New("unterminated labels")
}

// hubMetrics is what bench reads from the hub's /metrics.
type hubMetrics struct {
	At         time.Time
	RSS        float64 // process_resident_memory_bytes
	Goroutines float64 // go_goroutines
	CPU        float64 // process_cpu_seconds_total
	HeapInuse  float64 // go_memstats_heap_inuse_bytes
	StackInuse float64 // go_memstats_stack_inuse_bytes
	Sockets    float64 // loginhub_hub_open_sockets
	Slow       float64 // loginhub_hub_slow_consumers_dropped_total
	GCCycles   float64 // go_gc_duration_seconds_count: garbage collections completed
	HeapGoal   float64 // go_memstats_next_gc_bytes: the heap size the next collection ends
}

func metricsFrom(m map[string]float64, at time.Time) hubMetrics {
	get := func(k string) float64 { // 0 when the hub does not export it
		if v, ok := m[k]; ok && !math.IsNaN(v) && !math.IsInf(v, 0) {
			return v
		}
		return 0
	}
	return hubMetrics{
		At: at, RSS: get("process_resident_memory_bytes"), Goroutines: get("go_goroutines"),
		CPU: get("process_cpu_seconds_total"), HeapInuse: get("go_memstats_heap_inuse_bytes"),
		StackInuse: get("go_memstats_stack_inuse_bytes"),
		Sockets:    get("loginhub_hub_open_sockets"), Slow: get("loginhub_hub_slow_consumers_dropped_total"),
		GCCycles: get("go_gc_duration_seconds_count"), HeapGoal: get("go_memstats_next_gc_bytes"),
	}
}

// probe reads the hub nodes' /healthz and /metrics over a client of its
// own, apart from the load's connections; Run closes it when done.
type probe struct {
	urls   []string // the nodes' internal listeners (--metrics), in --url order
	client *http.Client
	every  time.Duration // between settle's reads
}

func newProbe(urls []string) *probe {
	return &probe{urls: urls, every: time.Second, client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 2}}}
}

func (p *probe) close() { p.client.CloseIdleConnections() }

// readMetrics fetches and parses one hub's /metrics.
func (p *probe) readMetrics(ctx context.Context, baseURL string) (hubMetrics, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", baseURL+"/metrics", nil)
	if err != nil {
		return hubMetrics{}, err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return hubMetrics{}, fmt.Errorf("reading the hub's /metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return hubMetrics{}, fmt.Errorf("the hub's /metrics: status %d", resp.StatusCode)
	}
	m, err := parsePrometheus(resp.Body)
	if err != nil {
		return hubMetrics{}, err
	}
	return metricsFrom(m, time.Now()), nil
}

// nodeMetrics is one read of every node's /metrics, in --url order.
type nodeMetrics []hubMetrics

// readNodes reads every node's /metrics at once.
func (p *probe) readNodes(ctx context.Context) (nodeMetrics, error) {
	if len(p.urls) == 0 {
		return nil, errors.New("no --metrics given (the hub serves /metrics only on LOGINHUB_INTERNAL_ADDR)")
	}
	out := make(nodeMetrics, len(p.urls))
	errs := make([]error, len(p.urls))
	var wg sync.WaitGroup
	for i, u := range p.urls {
		wg.Go(func() {
			out[i], errs[i] = p.readMetrics(ctx, u)
			if errs[i] != nil && len(p.urls) > 1 {
				errs[i] = fmt.Errorf("%s: %w", u, errs[i])
			}
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// sum adds the nodes up; At is the mean of the reads' times (they are
// taken at once).
func (m nodeMetrics) sum() hubMetrics {
	var s hubMetrics
	var at int64
	for _, n := range m {
		s.RSS += n.RSS
		s.Goroutines += n.Goroutines
		s.CPU += n.CPU
		s.HeapInuse += n.HeapInuse
		s.StackInuse += n.StackInuse
		s.Sockets += n.Sockets
		s.Slow += n.Slow
		s.GCCycles += n.GCCycles
		s.HeapGoal += n.HeapGoal
		at += n.At.UnixNano() / int64(len(m))
	}
	if len(m) > 0 {
		s.At = time.Unix(0, at)
	}
	return s
}

// within reports whether a and b differ by at most frac of a (or by at most
// abs).
func within(a, b, frac, abs float64) bool {
	d := math.Abs(a - b)
	return d <= abs || d <= frac*math.Abs(a)
}

// settledSince reports whether every node's RSS and goroutines agree between
// two reads.
func (m nodeMetrics) settledSince(prev nodeMetrics) bool {
	for i := range m {
		if !within(prev[i].RSS, m[i].RSS, 0.02, 0) || !within(prev[i].Goroutines, m[i].Goroutines, 0.02, 2) {
			return false
		}
	}
	return true
}

// settle waits for the hubs to settle after the idle desktops opened: until
// three reads a second (p.every) apart agree within 2 % on every node's RSS and
// goroutines, or for at most maxWait (0: one read, taken as settled). Two
// reads are not enough: a hub hands its idle heap back to the system a
// second or so after its work stops, so two reads just before that agree.
// It returns the last read, the first one (for the CPU spent while idle),
// and whether they settled.
func (p *probe) settle(ctx context.Context, maxWait time.Duration) (first, last nodeMetrics, settled bool, err error) {
	first, err = p.readNodes(ctx)
	if err != nil {
		return first, first, false, err
	}
	if maxWait <= 0 {
		return first, first, true, nil
	}
	prev, agreeing := first, 0
	deadline := time.Now().Add(maxWait)
	t := time.NewTimer(p.every)
	defer t.Stop()
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return first, prev, false, nil
		case <-t.C:
		}
		cur, err := p.readNodes(ctx)
		if err != nil {
			return first, prev, false, err
		}
		if cur.settledSince(prev) {
			agreeing++
		} else {
			agreeing = 0
		}
		if agreeing == 2 {
			return first, cur, true, nil
		}
		prev = cur
		t.Reset(p.every)
	}
	return first, prev, false, nil
}
