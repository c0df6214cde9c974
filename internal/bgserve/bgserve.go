// Package bgserve runs an http.Server in the background until it is closed:
// the webhook receivers of the bench and chaos tools.
package bgserve

import (
	"errors"
	"fmt"
	"net"
	"net/http"
)

// Server is an http.Server serving in the background.
type Server struct {
	srv  *http.Server
	done chan error
}

// Serve starts serving srv on ln in the background.
func Serve(srv *http.Server, ln net.Listener) *Server {
	s := &Server{srv: srv, done: make(chan error, 1)}
	go func() {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	return s
}

// Close stops the server at once, without waiting for its connections (as
// Shutdown would), and returns the error Serve ended with, nil when it ended
// by Close.
func (s *Server) Close() error {
	if err := s.srv.Close(); err != nil {
		return fmt.Errorf("stopping the webhook receiver: %w", err)
	}
	return <-s.done
}
