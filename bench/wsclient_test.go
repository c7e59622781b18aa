package bench

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/loginhub/loginhub/hub/ws"
)

// TestWSClient runs the tool's WebSocket client against gorilla's server
// over real TCP: the handshake and its Origin, masked text out, text in
// (short, 16-bit and fragmented lengths), pings answered, and close codes.
func TestWSClient(t *testing.T) {
	origins := make(chan string, 1)
	pongs := make(chan string, 1)
	up := websocket.Upgrader{CheckOrigin: func(r *http.Request) bool { origins <- r.Header.Get("Origin"); return true }}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		c.SetPongHandler(func(s string) error { pongs <- s; return nil })
		_, msg, err := c.ReadMessage()
		if err != nil {
			return
		}
		c.WriteMessage(websocket.TextMessage, append([]byte("echo:"), msg...))
		c.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("m", 300)))
		c.WriteControl(websocket.PingMessage, []byte("p1"), time.Now().Add(time.Second))
		fw, _ := c.NextWriter(websocket.TextMessage)
		fw.Write([]byte(strings.Repeat("a", 2000))) // gorilla fragments past its write buffer
		fw.Write([]byte(strings.Repeat("b", 5000)))
		fw.Close()
		c.ReadMessage() // handles the pong on the way to the client's "done"
		c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4001, "bye"), time.Now().Add(time.Second))
		c.ReadMessage()
	}))
	defer srv.Close()

	target, err := newWSTarget("ws" + strings.TrimPrefix(srv.URL, "http") + "/v1/ws")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := dialWS(ctx, d.DialContext, target, "http://app.test")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if o := <-origins; o != "http://app.test" {
		t.Errorf("Origin %q", o)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := c.writeText([]byte(`{"op":"watch"}`), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	want := []string{`echo:{"op":"watch"}`, strings.Repeat("m", 300), strings.Repeat("a", 2000) + strings.Repeat("b", 5000)}
	for _, w := range want {
		got, err := c.readMessage()
		if err != nil {
			t.Fatalf("reading %.20q...: %v", w, err)
		}
		if string(got) != w {
			t.Fatalf("read %d bytes %.20q..., want %d bytes %.20q...", len(got), got, len(w), w)
		}
	}
	select {
	case p := <-pongs:
		if p != "p1" {
			t.Errorf("pong %q, want the ping's payload", p)
		}
	case <-ctx.Done():
		t.Fatal("the ping was not answered")
	}
	if err := c.writeText([]byte("done"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	_, err = c.readMessage()
	if ce, ok := errors.AsType[*ws.CloseError](err); !ok || !ce.Peer || ce.Code != 4001 {
		t.Fatalf("after the close frame: %v, want close 4001", err)
	}
	if k := netKind(err); k != "closed_4001" {
		t.Errorf("netKind = %q", k)
	}
}

func TestWSClientRefused(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/wrong-accept" {
			w.Header().Set("Upgrade", "websocket")
			w.Header().Set("Connection", "Upgrade")
			w.Header().Set("Sec-WebSocket-Accept", "bm90IHRoZSBoYXNo")
			w.WriteHeader(http.StatusSwitchingProtocols)
			return
		}
		http.Error(w, "no", http.StatusForbidden)
	}))
	defer srv.Close()
	base := "ws" + strings.TrimPrefix(srv.URL, "http")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var d net.Dialer
	for path, status := range map[string]int{"/v1/ws": 403, "/wrong-accept": 0} {
		target, err := newWSTarget(base + path)
		if err != nil {
			t.Fatal(err)
		}
		_, err = dialWS(ctx, d.DialContext, target, "http://app.test")
		if he, ok := errors.AsType[*wsHandshakeError](err); !ok || he.status != status {
			t.Errorf("%s: %v, want a handshake error with status %d", path, err, status)
		}
	}
}
