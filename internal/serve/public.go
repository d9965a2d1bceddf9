package serve

import (
	"log/slog"
	"net/http"
	"time"
)

// newPublicServer returns the HTTP server of the WithPublicHTTP listener:
// short timeouts and small headers, since anyone may connect, and h as the
// only handler.
func (s *Server) newPublicServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}
