package main

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// The harness sends traffic only to this machine: every address it dials or
// binds is checked here first.

// loopbackHost reports whether host (a name or an IP literal, without port)
// is a loopback address. Only "localhost" is accepted among names, so that a
// resolver can never send load elsewhere.
func loopbackHost(host string) bool {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkLoopbackURL returns an error unless raw is a URL whose host is a
// loopback address.
func checkLoopbackURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("target %q: %w", raw, err)
	}
	if u.Host == "" || !loopbackHost(u.Hostname()) {
		return fmt.Errorf("target %q: only loopback targets (127.0.0.0/8, ::1, localhost) are allowed", raw)
	}
	return nil
}

// checkLoopbackDB accepts a postgres URL on a loopback address or on a
// local socket (no host, or a host that is a directory).
func checkLoopbackDB(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("database url: %w", err)
	}
	if h := u.Hostname(); h == "" || strings.HasPrefix(h, "/") || loopbackHost(h) {
		if q := u.Query().Get("host"); q != "" && !strings.HasPrefix(q, "/") && !loopbackHost(q) {
			return fmt.Errorf("database url: host %q is not loopback", q)
		}
		return nil
	}
	return fmt.Errorf("database url: host %q is not loopback", u.Hostname())
}

// sourceAddrs returns n loopback source addresses 127.0.0.2, 127.0.0.3, …
// Each source address has its own ephemeral port range towards a server, so
// the port range does not limit the number of connections.
func sourceAddrs(n int) ([]string, error) {
	if n < 1 || n > 250 {
		return nil, fmt.Errorf("-sources %d: must be 1 to 250", n)
	}
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("127.0.0.%d", i+2)
	}
	return out, nil
}
