package handlers

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/loginhub/loginhub/authcore"
	qrcode "github.com/skip2/go-qrcode"
)

// QRCache keeps rendered QR images for a while: a desktop page and its
// reloads ask for the same image, and a PNG costs about a millisecond of
// CPU to draw. Bounded in entries; safe for concurrent use.
type QRCache struct {
	mu      sync.Mutex
	max     int
	entries map[string]qrEntry
}

type qrEntry struct {
	body  []byte
	until time.Time
}

// NewQRCache returns a cache of at most max images.
func NewQRCache(max int) *QRCache {
	return &QRCache{max: max, entries: make(map[string]qrEntry)}
}

func (c *QRCache) get(key string, now time.Time, render func() ([]byte, error), ttl time.Duration) ([]byte, error) {
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if ok && now.Before(e.until) {
		return e.body, nil
	}
	body, err := render()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		for k, e := range c.entries {
			if !now.Before(e.until) || len(c.entries) >= c.max {
				delete(c.entries, k)
			}
		}
	}
	c.entries[key] = qrEntry{body: body, until: now.Add(ttl)}
	return body, nil
}

const (
	defaultPNGSize = 256
	minPNGSize     = 64
	maxPNGSize     = 1024
)

func handleQRPNG(d Deps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		size := defaultPNGSize
		if s := r.URL.Query().Get("size"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < minPNGSize || n > maxPNGSize {
				writeError(w, r, d.Logger, authcore.Errorf(authcore.KindInvalid, "size must be a number of pixels from %d to %d", minPNGSize, maxPNGSize))
				return
			}
			size = n
		}
		serveQR(w, r, d, "image/png", "png:"+strconv.Itoa(size), func(url string) ([]byte, error) {
			return qrcode.Encode(url, qrcode.Medium, size)
		})
	}
}

func handleQRSVG(d Deps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		serveQR(w, r, d, "image/svg+xml", "svg", renderSVG)
	}
}

func serveQR(w http.ResponseWriter, r *http.Request, d Deps, contentType, variant string, render func(url string) ([]byte, error)) {
	url, err := d.Auth.QRURL(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		writeError(w, r, d.Logger, err)
		return
	}
	body, err := d.QR.get(variant+":"+url, time.Now(), func() ([]byte, error) { return render(url) }, 2*time.Minute)
	if err != nil {
		writeError(w, r, d.Logger, fmt.Errorf("render QR: %w", err))
		return
	}
	w.Header().Set("Content-Type", contentType)
	// The image is as public as the QR code on screen, but it is only
	// useful to this page for the ticket's life.
	w.Header().Set("Cache-Control", "private, max-age=120")
	w.Write(body)
}

// renderSVG draws the QR code as one SVG path of unit squares, scalable to
// any size with crisp edges. Dark runs of a row become one rectangle each.
func renderSVG(url string) ([]byte, error) {
	q, err := qrcode.New(url, qrcode.Medium)
	if err != nil {
		return nil, err
	}
	bm := q.Bitmap() // includes the quiet zone
	n := strconv.Itoa(len(bm))
	b := make([]byte, 0, 8<<10)
	b = append(b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 `+n+" "+n+`" shape-rendering="crispEdges">`...)
	b = append(b, `<rect width="`+n+`" height="`+n+`" fill="#fff"/><path fill="#000" d="`...)
	for y, row := range bm {
		for x := 0; x < len(row); x++ {
			if !row[x] {
				continue
			}
			start := x
			for x < len(row) && row[x] {
				x++
			}
			w := strconv.Itoa(x - start)
			b = append(b, 'M')
			b = strconv.AppendInt(b, int64(start), 10)
			b = append(b, ' ')
			b = strconv.AppendInt(b, int64(y), 10)
			b = append(b, "h"+w+"v1h-"+w+"z"...)
		}
	}
	b = append(b, `"/></svg>`...)
	return b, nil
}
