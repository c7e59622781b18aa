package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// The parent drives a child over its stdin ("flows\n", "close\n"; EOF means
// stop) and reads one JSON object per line from its stdout: "idle" when
// its idle desktops wait, "flows" when its flows are done, "closed" when
// its sockets are closed, or "error".
type childMsg struct {
	Type   string       `json:"type"`
	Idle   *idleReport  `json:"idle,omitempty"`
	Flows  *flowReport  `json:"flows,omitempty"`
	Closed *closeReport `json:"closed,omitempty"`
	Error  string       `json:"error,omitempty"`
}

// startWorkers makes this process the only worker, or starts cfg.procs
// children.
func startWorkers(ctx context.Context, cfg config, mode string, lg *logger) ([]worker, error) {
	if cfg.procs <= 1 {
		return []worker{newLocalWorker(cfg, mode, lg)}, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("bench: --procs needs this executable's path: %w", err)
	}
	remaining := cfg.duration
	if dl, ok := ctx.Deadline(); ok {
		remaining = max(time.Until(dl), time.Millisecond).Round(time.Millisecond)
	}
	var ws []worker
	for i := range cfg.procs {
		c, err := startChild(exe, childArgs(cfg, mode, i, remaining), i, lg)
		if err != nil {
			for _, w := range ws {
				w.close()
			}
			return nil, err
		}
		ws = append(ws, c)
	}
	return ws, nil
}

// childArgs is child i's command line: its share of the desktops, flows,
// rate and concurrency, and its own source addresses; it stops when
// remaining has passed (creating until --duration: at the parent's end).
func childArgs(cfg config, mode string, i int, remaining time.Duration) []string {
	if cfg.untilDuration {
		remaining = max(time.Until(cfg.endAt), time.Millisecond).Round(time.Millisecond)
	}
	p := cfg.procs
	itoa := strconv.Itoa
	ftoa := func(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
	args := []string{"bench", "--child", "--child-index", itoa(i),
		"--url", strings.Join(cfg.baseURLs, ","), "--origin", cfg.origin,
		"--desktops", itoa(share(cfg.desktops, i, p)), "--flows", itoa(share(cfg.flows, i, p)),
		"--concurrency", itoa(max(1, ceilDiv(cfg.concurrency, p))),
		"--open-rate", ftoa(cfg.openRate / float64(p)),
		"--sources", itoa(cfg.sources), "--source-offset", itoa(cfg.sourceOffset + i*cfg.sources),
		"--phones", itoa(cfg.phones), "--mode", mode,
		"--poll-interval", cfg.pollInterval.String(), "--longpoll-wait", itoa(cfg.longPollWait),
		"--settle", cfg.settle.String(), "--gogc", gogcArg(cfg.gcPercent), "--memory-limit", itoa(cfg.memoryLimitMiB), "--gomaxprocs", itoa(cfg.maxProcs), "--duration", remaining.String(), "--procs", "1",
	}
	if mode != modeCreate { // creates have no rate
		args = append(args, "--rate", ftoa(cfg.rate/float64(p)))
	}
	if cfg.untilDuration {
		args = append(args, "--until-duration")
	}
	if cfg.confirmWaiting {
		args = append(args, "--confirm-waiting")
	}
	if cfg.cpuProfile != "" {
		args = append(args, "--cpuprofile", cfg.cpuProfile+".child"+itoa(i))
	}
	return args
}

// gogcArg is --gogc's value for gcPercent.
func gogcArg(gcPercent int) string {
	if gcPercent < 0 {
		return "off"
	}
	return strconv.Itoa(gcPercent)
}

// childWorker is a worker in a child process.
type childWorker struct {
	idx    int
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	msgs   chan childMsg // closed when its stdout ends
	exited chan struct{} // closed when it has exited; then waitErr is set
	err    error
	lg     *logger
}

func startChild(exe string, args []string, idx int, lg *logger) (*childWorker, error) {
	cmd := exec.Command(exe, args...)
	cmd.Stderr = lg.w
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: starting child %d: %w", idx, err)
	}
	c := &childWorker{idx: idx, cmd: cmd, stdin: stdin, msgs: make(chan childMsg, 4), exited: make(chan struct{}), lg: lg}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 256<<20) // raw samples: up to a few MB a line
		for sc.Scan() {
			var m childMsg
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				lg.Printf("child %d: not a protocol line: %.100s", idx, sc.Text())
				continue
			}
			c.msgs <- m
		}
		close(c.msgs)
		io.Copy(io.Discard, stdout)
		c.err = cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

// await returns the child's next message of type typ. When ctx ends it
// interrupts the child, which then reports what it has, and waits for that
// a little longer.
func (c *childWorker) await(ctx context.Context, typ string, grace time.Duration) (childMsg, error) {
	done := ctx.Done()
	var timeout <-chan time.Time
	for {
		select {
		case m, ok := <-c.msgs:
			if !ok {
				<-c.exited
				return childMsg{}, fmt.Errorf("bench: child %d exited before reporting %s: %v", c.idx, typ, c.err)
			}
			if m.Type == "error" {
				return m, fmt.Errorf("bench: child %d: %s", c.idx, m.Error)
			}
			if m.Type == typ {
				return m, nil
			}
		case <-done:
			done = nil
			c.cmd.Process.Signal(os.Interrupt)
			timeout = time.After(grace)
		case <-timeout:
			return childMsg{}, fmt.Errorf("bench: child %d did not report %s in time", c.idx, typ)
		}
	}
}

func (c *childWorker) send(cmd string) {
	io.WriteString(c.stdin, cmd+"\n") // a child that is gone says so in await
}

func (c *childWorker) openIdle(ctx context.Context) (idleReport, error) {
	m, err := c.await(ctx, "idle", 15*time.Second)
	if err != nil || m.Idle == nil {
		return idleReport{}, errors.Join(err, errors.New("no idle report"))
	}
	return *m.Idle, nil
}

func (c *childWorker) runFlows(ctx context.Context) (flowReport, error) {
	c.send("flows")
	m, err := c.await(ctx, "flows", 15*time.Second)
	if err != nil || m.Flows == nil {
		return flowReport{}, errors.Join(err, errors.New("no flows report"))
	}
	return *m.Flows, nil
}

// close asks the child to close its sockets and exit; a child that does
// not is killed.
func (c *childWorker) close() closeReport {
	var rep closeReport
	c.send("close")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if m, err := c.await(ctx, "closed", 5*time.Second); err == nil && m.Closed != nil {
		rep = *m.Closed
	} else if err != nil {
		c.lg.Printf("%v", err)
	}
	c.stdin.Close()
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		c.lg.Printf("child %d did not exit; killing it", c.idx)
		c.cmd.Process.Kill()
		<-c.exited
	}
	return rep
}

// runChild is a child process: one local worker driven by the parent.
func runChild(ctx context.Context, cfg config, stdin io.Reader, stdout, stderr io.Writer) error {
	lg := &logger{w: stderr, prefix: fmt.Sprintf("bench[child %d]: ", cfg.childIndex)}
	w := newLocalWorker(cfg, cfg.modes[0], lg)
	enc := json.NewEncoder(stdout)
	send := func(m childMsg) error { return enc.Encode(m) }
	cmds := make(chan string, 4)
	go func() { // ends when the parent closes stdin or this process exits
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			cmds <- strings.TrimSpace(sc.Text())
		}
		close(cmds)
	}()
	next := func() string {
		select {
		case c, ok := <-cmds:
			if ok {
				return c
			}
		case <-ctx.Done():
		}
		return ""
	}

	idle, err := w.openIdle(ctx)
	if err != nil {
		send(childMsg{Type: "error", Error: err.Error()})
		w.close()
		return err
	}
	send(childMsg{Type: "idle", Idle: &idle})
	if next() == "flows" {
		fr, err := w.runFlows(ctx)
		if err != nil {
			send(childMsg{Type: "error", Error: err.Error()})
		} else {
			send(childMsg{Type: "flows", Flows: &fr})
		}
		next() // "close", EOF or the end of ctx
	}
	cr := w.close()
	return send(childMsg{Type: "closed", Closed: &cr})
}
