package apisvc

import (
	_ "embed" // the dashboard page
	"net/http"
)

// PathUI serves the dashboard: a static page, embedded in the binary, holding no data itself.
// It reads everything through the API with the token the URL's fragment carries (fragments
// never reach the server), so it is as protected as the API.
const PathUI = "/ui"

//go:embed ui/index.html
var dashboardHTML []byte

func serveUI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'")
	w.Header().Set("X-Frame-Options", "DENY")
	_, _ = w.Write(dashboardHTML)
}
