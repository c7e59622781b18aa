// Package redistest starts real redis-server processes on random loopback
// ports for tests: a single server (optionally persistent, so a test can
// restart it) or a three-master Redis Cluster. Without a redis-server
// binary the tests skip with a clear message, unless
// LOGINHUB_TEST_REQUIRE_ALL=1 makes them fail.
package redistest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// startTimeout bounds how long a server may take to say it is ready.
const startTimeout = 15 * time.Second

// Binary returns the path of redis-server, skipping (or failing, when
// LOGINHUB_TEST_REQUIRE_ALL=1) the test if there is none.
func Binary(t testing.TB) string {
	t.Helper()
	return lookPath(t, "redis-server")
}

func lookPath(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	msg := fmt.Sprintf("%s not installed (apt-get install redis-server); skipping the Redis tests", name)
	if os.Getenv("LOGINHUB_TEST_REQUIRE_ALL") == "1" {
		t.Fatal(msg + " — but LOGINHUB_TEST_REQUIRE_ALL=1 requires them")
	}
	t.Skip(msg)
	return ""
}

// Options tunes a server.
type Options struct {
	// Persistent turns on the append-only file with fsync on every write,
	// so that Restart keeps the data, as a production Redis with AOF would.
	Persistent bool
	// Args are extra redis-server arguments ("--cluster-enabled", "yes", ...).
	Args []string
}

// Server is one redis-server process owned by a test.
type Server struct {
	Addr string // 127.0.0.1:port
	URL  string // redis://127.0.0.1:port

	t    testing.TB
	bin  string
	dir  string
	opts Options

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Start starts a redis-server on a free loopback port and stops it when
// the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s := &Server{t: t, bin: Binary(t), dir: t.TempDir(), opts: opts}
	var err error
	for range 5 { // a random port may be taken meanwhile: try another
		port := freePort(t)
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if err = s.start(); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	s.URL = "redis://" + s.Addr
	t.Cleanup(s.Stop)
	return s
}

// freePort returns a port that is free now, and whose cluster bus port
// (port+10000) is free too.
func freePort(t testing.TB) int {
	t.Helper()
	for range 100 {
		port := 20000 + rand.IntN(30000)
		if portFree(port) && portFree(port+10000) {
			return port
		}
	}
	t.Fatal("redistest: no free port found")
	return 0
}

func portFree(port int) bool {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

func (s *Server) start() error {
	_, port, _ := net.SplitHostPort(s.Addr)
	args := []string{
		"--port", port, "--bind", "127.0.0.1", "--dir", s.dir,
		"--save", "", "--logfile", "", "--daemonize", "no", "--protected-mode", "yes",
	}
	if s.opts.Persistent {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	args = append(args, s.opts.Args...)
	cmd := exec.Command(s.bin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	ready := make(chan error, 1)
	go func() {
		// Read the log until the server says it is ready, then keep
		// draining it so the server never blocks on a full pipe.
		sc := bufio.NewScanner(out)
		var tail []string
		said := false
		for sc.Scan() {
			line := sc.Text()
			if !said {
				tail = append(tail, line)
				if strings.Contains(line, "Ready to accept connections") {
					said = true
					ready <- nil
				}
			}
		}
		if !said {
			ready <- fmt.Errorf("redis-server on %s exited before it was ready:\n%s", s.Addr, strings.Join(tail, "\n"))
		}
		io.Copy(io.Discard, out)
	}()
	select {
	case err := <-ready:
		if err != nil {
			cmd.Wait()
			return err
		}
	case <-time.After(startTimeout):
		cmd.Process.Kill()
		cmd.Wait()
		return fmt.Errorf("redis-server on %s not ready within %s", s.Addr, startTimeout)
	}
	s.mu.Lock()
	s.cmd = cmd
	s.mu.Unlock()
	return nil
}

// Stop stops the server (SIGTERM, then SIGKILL after 5 s). It is safe to
// call twice.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd := s.cmd
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// Kill stops the server at once with SIGKILL, as a crash would.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd := s.cmd
	s.cmd = nil
	s.mu.Unlock()
	if cmd != nil {
		cmd.Process.Kill()
		cmd.Wait()
	}
}

// Restart starts the stopped (or killed) server again on the same port,
// with the same data directory.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	var err error
	for range 3 { // the old socket may linger for a moment
		if err = s.start(); err == nil {
			return
		}
	}
	s.t.Fatalf("redistest: restart: %v", err)
}

// Client returns a client of the server, closed when the test ends.
func (s *Server) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	s.t.Cleanup(func() { c.Close() })
	return c
}

// Cluster is a three-master Redis Cluster on loopback, owned by a test.
type Cluster struct {
	Servers []*Server
	Addrs   []string
	// URL is the hub's form: redis+cluster://host:port?addr=host2:port2&addr=host3:port3
	URL string
}

// StartCluster starts three persistent cluster-enabled servers, joins them
// with redis-cli --cluster create, and waits until the cluster says it is
// ok. A master can be killed and restarted (Server.Kill, Server.Restart)
// without losing its data or its slots.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	cli := lookPath(t, "redis-cli")
	c := &Cluster{}
	for range 3 {
		s := Start(t, Options{Persistent: true, Args: []string{
			"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000",
		}})
		c.Servers = append(c.Servers, s)
		c.Addrs = append(c.Addrs, s.Addr)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	c.URL = "redis+cluster://" + c.Addrs[0] + "?addr=" + c.Addrs[1] + "&addr=" + c.Addrs[2]
	c.waitOK(t, ctx)
	return c
}

// waitOK waits until every node reports cluster_state:ok and agrees that
// all 16384 slots are assigned. Nodes converge through gossip, so there is
// no single event to wait on: it asks again every 50 ms until the deadline.
func (c *Cluster) waitOK(t testing.TB, ctx context.Context) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ok := true
		for _, s := range c.Servers {
			cl := redis.NewClient(&redis.Options{Addr: s.Addr})
			info, err := cl.ClusterInfo(ctx).Result()
			cl.Close()
			if err != nil || !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_slots_ok:16384") {
				ok = false
				break
			}
		}
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("redistest: cluster %v not ok in time", c.Addrs)
		case <-tick.C:
		}
	}
}

// Client returns a cluster client, closed when the test ends.
func (c *Cluster) Client(t testing.TB) *redis.ClusterClient {
	cl := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs})
	t.Cleanup(func() { cl.Close() })
	return cl
}

// Dir is where the server keeps its files.
func (s *Server) Dir() string { return filepath.Clean(s.dir) }
