package handlers

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"net/http"
	"time"
)

// openAPIDocument is the OpenAPI 3.1 document of the hub's API, served as
// is. It is written by hand; the root package's tests hold it to the
// router (every route documented, no documented route missing) and every
// answer they receive to it.
//
//go:embed openapi.json
var openAPIDocument []byte

// handleOpenAPI serves the document with an ETag of its content: it
// changes only with the binary, so clients may cache it for an hour and
// revalidate cheaply.
func handleOpenAPI() http.HandlerFunc {
	sum := sha256.Sum256(openAPIDocument)
	etag := `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`
	return func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "application/json; charset=utf-8")
		h.Set("Cache-Control", "public, max-age=3600")
		h.Set("ETag", etag)
		http.ServeContent(w, r, "openapi.json", time.Time{}, bytes.NewReader(openAPIDocument))
	}
}
