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
	return s.newHTTPServer(h, 10*time.Second, 16<<10)
}

// newHTTPServer returns an HTTP server for h with the timeouts both of the
// process's HTTP listeners share, writeTimeout for a response, and headers
// of at most maxHeaderBytes. Its errors go to the process's log at warn.
func (s *Server) newHTTPServer(h http.Handler, writeTimeout time.Duration, maxHeaderBytes int) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}
