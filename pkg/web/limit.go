package web

import (
	"net"
	"net/http"
)

// ClientIP is the peer address, the key of per-address rate limits
// (pkg/ratelimit). Behind a proxy, the proxy should set X-Forwarded-For and
// the operator trust it; until then the peer is used.
func ClientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
